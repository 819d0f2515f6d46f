from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fake_tpay import FakeTpay, make_ca
from .servers import serve


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def tpay_ca():
    return make_ca()


@pytest.fixture
def fake_tpay(tpay_ca) -> Iterator[FakeTpay]:
    fake = FakeTpay(ca=tpay_ca)

    def build(base_url: str):
        fake.base_url = base_url
        return fake.app()

    with serve(build):
        yield fake
