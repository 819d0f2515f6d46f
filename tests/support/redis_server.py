"""A Redis server for the tests of the Redis store: the one `scripts/test` starts (`EKP_TEST_REDIS_URL`;
each xdist worker uses its own database number), else a throwaway one on a free loopback port.

Skipped when Debian's `redis-server` is not installed, except on CI (`CI=true`), where that fails like a
missing PostgreSQL does (`scripts/setup --test` installs it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _worker_database() -> int:
    """gw0 -> 1, gw1 -> 2, ...; 0 without xdist (Redis has databases 0-15)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return 1 + int(worker[2:]) % 15 if worker.startswith("gw") and worker[2:].isdigit() else 0


def _with_database(url: str, number: int) -> str:
    base, _, _ = url.rstrip("/").rpartition("/") if url.rstrip("/").rsplit("/", 1)[-1].isdigit() else (url.rstrip("/"), "", "")
    return f"{base}/{number}"


def flush(url: str) -> None:
    """Empty the Redis database of `url` (a test starts with no sessions or counters)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def shift_expiries(url: str, by_seconds: float) -> None:
    """Make every key's time to live `by_seconds` shorter (a test's clock travelled): Redis expires keys on
    its own clock, which `web.platform.clock` does not move."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(count=1000):
            ttl = client.pttl(key)
            if ttl is None or ttl < 0:
                continue
            left = ttl - int(by_seconds * 1000)
            if left <= 0:
                client.delete(key)
            else:
                client.pexpire(key, left)
    finally:
        client.close()


@contextmanager
def redis_server() -> Iterator[str]:
    """Yield the URL of a Redis database for this worker: on the server of `EKP_TEST_REDIS_URL` if set,
    else on a `redis-server` (no persistence) started on 127.0.0.1 at a free port and stopped afterwards."""
    shared = os.environ.get("EKP_TEST_REDIS_URL", "").strip()
    if shared:
        url = _with_database(shared, _worker_database())
        if not _ping(int(url.split(":")[2].split("/")[0])):
            pytest.fail(f"EKP_TEST_REDIS_URL={shared}: no Redis answers there", pytrace=False)
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not installed (scripts/setup --test installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + "; on CI the Redis tests must not be skipped", pytrace=False)
        pytest.skip(reason)
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="ekp-test-redis.") as workdir:
        process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
             "--dir", workdir, "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while not _ping(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start on port {port}", pytrace=False)
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
