"""The operator's tariff files (TOML, versioned in `tariffs/`), read once at start-up and validated."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from domain.tariff_5p1 import Tariff5p1, tariff_5p1_from_toml
from web.settings import PROJECT_ROOT

TARIFF_DIR = PROJECT_ROOT / "tariffs"


@lru_cache(maxsize=4)
def _tariff_5p1(path: str) -> Tariff5p1:
    return tariff_5p1_from_toml(Path(path).read_text(encoding="utf-8"))


def tariff_5p1() -> Tariff5p1:
    return _tariff_5p1(os.environ.get("EKP_TARIFF_5P1", str(TARIFF_DIR / "krakow-5plus1.toml")))
