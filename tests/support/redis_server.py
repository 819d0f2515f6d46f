"""A throwaway Redis server on a free loopback port, for the tests of the Redis store.

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


@contextmanager
def redis_server() -> Iterator[str]:
    """Start `redis-server` (no persistence) on 127.0.0.1 at a free port; yield its URL; stop it."""
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
