"""Throughput of the mobile-ticket record and its Aztec code (median of several runs).

Run: .venv/bin/python benchmarks/ticket_records.py [--runs 5] [--seconds 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support.barcodes (benchmarks/ is no package)

from domain import ticket_record as tr  # noqa: E402
from tests.support import barcodes  # noqa: E402


def rate(action: Callable[[], object], seconds: float) -> float:
    """Operations per second of ``action`` over roughly ``seconds`` of wall time."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        action()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5, help="duration of one run")
    args = parser.parse_args()

    issuer = tr.generate_private_key()
    device = tr.generate_private_key()
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    ts = int(now.timestamp())
    fields = tr.TicketFields(
        key_id=1,
        ticket_id=123456789,
        product_code="5P1-N",
        valid_from=datetime(2026, 3, 4, 23, 0, tzinfo=UTC),
        valid_until=datetime(2026, 4, 4, 22, 0, tzinfo=UTC),
        holder_initials="ŁŻ",
        birth_year=1990,
        device_public_key=tr.compressed_device_key(device.public_key()),
    )
    static = tr.sign_static(issuer, fields)
    presentation = tr.sign_presentation(device, static, ts)
    keys = {1: issuer.public_key()}
    revoked = set(range(1, 10_001, 3))
    png = barcodes.render_aztec_png(presentation)
    assert tr.verify(presentation, keys, revoked, now).valid
    assert barcodes.decode_aztec_image(png) == presentation

    cases: list[tuple[str, Callable[[], object]]] = [
        ("issue: sign static record", lambda: tr.sign_static(issuer, fields)),
        ("phone: sign presentation", lambda: tr.sign_presentation(device, static, ts)),
        ("inspect: decode only", lambda: tr.decode(presentation)),
        ("inspect: verify (2 signatures)", lambda: tr.verify(presentation, keys, revoked, now)),
        ("Aztec: render PNG", lambda: barcodes.render_aztec_png(presentation)),
        ("Aztec: render SVG", lambda: barcodes.render_aztec_svg(presentation)),
        ("Aztec: decode PNG", lambda: barcodes.decode_aztec_image(png)),
    ]
    print(f"presentation {len(presentation)} bytes, static record {len(static)} bytes, "
          f"PNG {len(png)} bytes; median of {args.runs} runs x {args.seconds} s")
    print(f"{'operation':<34}{'median /s':>12}{'min /s':>12}{'max /s':>12}")
    for name, action in cases:
        rates = [rate(action, args.seconds) for _ in range(args.runs)]
        print(f"{name:<34}{statistics.median(rates):>12,.0f}{min(rates):>12,.0f}{max(rates):>12,.0f}")


if __name__ == "__main__":
    main()
