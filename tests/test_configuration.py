"""One typed configuration (issue 14): only `web/platform/settings.py` reads the environment; `web/cli.py` may set
variables for the processes it starts (uvicorn's workers), never read them."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READER = Path("web/platform/settings.py")
# A stand-alone sandbox host (`uvicorn payments.sandbox.app:standalone_app`) is its own process with its own
# EKP_SANDBOX_* configuration, read in one function.
OWN_PROCESS = {(Path("payments/sandbox/app.py"), "settings_from_env")}
SETS_FOR_CHILDREN = Path("web/cli.py")


def _environment_reads(path: Path) -> list[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node

    def function_of(node: ast.AST) -> str:
        while node in parents:
            node = parents[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                return node.name
        return ""

    found = []
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "environb", "getenvb"}:
            name = node.attr
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            name = next((a.name for a in node.names if a.name in {"environ", "getenv"}), None)
        if name is None or (path, function_of(node)) in OWN_PROCESS:
            continue
        if path == SETS_FOR_CHILDREN and name == "environ":
            parent = parents.get(node)
            grand = parents.get(parent) if parent is not None else None
            if isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Store):
                continue  # os.environ[...] = value
            if (isinstance(parent, ast.Attribute) and parent.attr in {"setdefault", "update"}
                    and isinstance(grand, ast.Call)):
                continue
        found.append(f"{path}:{node.lineno}: os.{name}")
    return found


def test_only_the_settings_read_the_environment():
    modules = [p.relative_to(ROOT) for package in ("web", "domain", "payments") for p in (ROOT / package).rglob("*.py")]
    assert READER in modules and SETS_FOR_CHILDREN in modules
    reads = [read for path in modules if path != READER for read in _environment_reads(path)]
    assert reads == [], "read the setting from web.platform.settings.Settings instead:\n" + "\n".join(reads)


def test_the_check_sees_a_read():
    assert _environment_reads(READER)  # load_settings reads os.environ: the check would see it elsewhere
