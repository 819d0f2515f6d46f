"""Several EKP nodes as in production: `ekp run` processes (uvicorn) with their own `var/`, one PostgreSQL,
one Redis, a round-robin TCP load balancer in front (what notifications and payers come back through), an
SMTP server that counts what it receives, and `ekp ...` commands run on a node's settings."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import PESEL_KEY_HEX, SECRET_KEY_HEX, Browser
from web.platform import clock as web_clock

PROJECT_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Node:
    """`python -m web.cli run` in a subprocess on a free port, with its own EKP_VAR_DIR."""

    def __init__(self, name: str, var_dir: Path, env: dict[str, str], args: tuple[str, ...] = ()) -> None:
        self.name = name
        self.args = args
        self.clients: list[httpx.Client] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        var_dir.mkdir(parents=True, exist_ok=True)
        self.var_dir = var_dir
        self.log_path = var_dir / f"{name}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("EKP_")}
        self.env.update(env, EKP_VAR_DIR=str(var_dir), EKP_HOST="127.0.0.1", EKP_PORT=str(self.port),
                        PYTHONUNBUFFERED="1")
        if web_clock.is_pinned():
            self.env[web_clock.PIN_VARIABLE] = web_clock.pin_text()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Node:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "web.cli", "run", "--no-demo", "--no-migrate", *self.args],
                                            cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"node {self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"node {self.name} was not ready within {START_TIMEOUT} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as a crashed machine."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def client(self) -> httpx.Client:
        client = httpx.Client(base_url=self.url, timeout=30)
        self.clients.append(client)
        return client

    def browser(self) -> Browser:
        return Browser(self.client())  # type: ignore[arg-type]

    def cli(self, *args: str, **env: str) -> subprocess.Popen[str]:
        """Start `ekp ARGS` with this node's settings (plus `env`); the caller waits for it."""
        return subprocess.Popen([sys.executable, "-m", "web.cli", *args], cwd=PROJECT_ROOT,
                                env={**self.env, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def node_env(database_url: str, redis_url: str, base_url: str, ticket_keys: str, **more: str) -> dict[str, str]:
    """What every node of one installation shares (database, Redis, keys, public address)."""
    return {"EKP_ENV": "test", "EKP_DATABASE_URL": database_url, "EKP_REDIS_URL": redis_url, "EKP_BASE_URL": base_url,
            "EKP_SECRET_KEY": SECRET_KEY_HEX, "EKP_PESEL_KEY": PESEL_KEY_HEX, "EKP_TICKET_KEYS": ticket_keys,
            "EKP_SCHEDULER": "false", **more}


class LoadBalancer:
    """A round-robin TCP proxy on a free loopback port: each connection goes to the next backend that
    accepts it (a dead one is skipped), as a load balancer with health checks would."""

    def __init__(self) -> None:
        self.backends: list[int] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._next = 0
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.2)
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self._running:
            try:
                downstream, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._forward, args=(downstream,), daemon=True).start()

    def _forward(self, downstream: socket.socket) -> None:
        upstream = None
        for _ in range(len(self.backends)):
            port = self.backends[self._next % len(self.backends)]
            self._next += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=2)
                break
            except OSError:
                continue
        if upstream is None:
            downstream.close()
            return
        upstream.settimeout(None)

        def pipe(source: socket.socket, target: socket.socket) -> None:
            try:
                while data := source.recv(65536):
                    target.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (source, target):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        back = threading.Thread(target=pipe, args=(upstream, downstream), daemon=True)
        back.start()
        pipe(downstream, upstream)
        back.join(timeout=30)
        upstream.close()
        downstream.close()

    def close(self) -> None:
        self._running = False
        self._server.close()
        self._thread.join(timeout=5)


class CountingSmtp:
    """An SMTP server (aiosmtpd) that keeps the recipients and subjects of what it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.received: list[tuple[tuple[str, ...], str]] = []
        self.port = free_port()
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, ready_timeout=10)
        self._controller.start()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # aiosmtpd hook
        from email import message_from_bytes, policy

        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self._lock:
            self.received.append((tuple(r.lower() for r in envelope.rcpt_tos), str(message["Subject"] or "")))
        return "250 Message accepted for delivery"

    def close(self) -> None:
        self._controller.stop()


@contextmanager
def cluster(tmp_path: Path, env: dict[str, str], names: tuple[str, ...] = ("a", "b"),
            args: dict[str, tuple[str, ...]] | None = None) -> Iterator[list[Node]]:
    """Start the nodes (`args`: extra `ekp run` options per node name), wait until each is ready."""
    nodes = [Node(name, tmp_path / f"var-{name}", env, (args or {}).get(name, ())) for name in names]
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_ready()
        yield nodes
    finally:
        for node in nodes:
            node.stop()
