"""Aztec codes for mobile tickets (R-5P1-8): render with zxing-cpp, read back exactly.

Also checks that the inspector's JavaScript verifier reaches the same verdicts as the server.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from domain import ticket_record as tr
from tests.support import barcodes

ISSUER = tr.generate_private_key()
DEVICE = tr.generate_private_key()
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
FIELDS = tr.TicketFields(
    key_id=1,
    ticket_id=987654,
    product_code="5P1-U",
    valid_from=datetime(2026, 3, 4, 23, 0, tzinfo=UTC),
    valid_until=datetime(2026, 4, 4, 22, 0, tzinfo=UTC),
    holder_initials="ŚĆ",
    birth_year=2004,
    device_public_key=tr.compressed_device_key(DEVICE.public_key()),
)


def signed_presentation(fields: tr.TicketFields = FIELDS) -> bytes:
    return tr.sign_presentation(DEVICE, tr.sign_static(ISSUER, fields), int(NOW.timestamp()))


def rasterise_svg(svg: str, scale: int = 4) -> bytes:
    """Draw the SVG path's rectangles (all render_aztec_svg emits) into a PNG, as a browser would."""
    view_box = re.search(r'viewBox="0 0 (\d+) (\d+)"', svg)
    assert view_box is not None
    width, height = int(view_box[1]), int(view_box[2])
    image = Image.new("L", (width * scale, height * scale), 255)
    pixels = image.load()
    path = re.search(r'<path fill="#000000" d="([^"]+)"', svg)
    assert path is not None
    rects = re.findall(r"M(\d+) (\d+)h(\d+)v(\d+)h-\d+Z", path[1])
    assert "".join(f"M{x} {y}h{w}v{h}h-{w}Z" for x, y, w, h in rects) == path[1]
    for x, y, w, h in rects:
        x0, y0 = int(x) * scale, int(y) * scale
        for px in range(x0, x0 + int(w) * scale):
            for py in range(y0, y0 + int(h) * scale):
                pixels[px, py] = 0
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_r_5p1_8_signed_presentation_survives_png_round_trip() -> None:
    payload = signed_presentation()
    png = barcodes.render_aztec_png(payload)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    scanned = barcodes.decode_aztec_image(png)
    assert scanned == payload
    verdict = tr.verify(scanned, {1: ISSUER.public_key()}, set(), NOW)
    assert verdict.valid
    assert verdict.ticket is not None and verdict.ticket.holder_initials == "ŚĆ"


def test_r_5p1_8_largest_presentation_survives_png_round_trip() -> None:
    widest = replace(FIELDS, product_code="Z" * 16, holder_initials="\U0001d400" * 4)
    payload = signed_presentation(widest)
    assert len(payload) == 218
    assert barcodes.decode_aztec_image(barcodes.render_aztec_png(payload, scale=3)) == payload


def test_r_5p1_8_svg_draws_the_same_code() -> None:
    payload = signed_presentation()
    svg = barcodes.render_aztec_svg(payload, label='Bilet "5+1"')
    assert svg.startswith("<svg ") and svg.endswith("</svg>")
    assert "<?xml" not in svg and "DOCTYPE" not in svg and ' id="' not in svg
    assert 'aria-label="Bilet &quot;5+1&quot;"' in svg
    assert barcodes.decode_aztec_image(rasterise_svg(svg)) == payload


def test_r_5p1_8_photo_of_a_rotated_code_still_reads() -> None:
    payload = signed_presentation()
    image = Image.open(io.BytesIO(barcodes.render_aztec_png(payload))).convert("L").rotate(90, expand=True)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    assert barcodes.decode_aztec_image(out.getvalue()) == payload


@settings(max_examples=15, deadline=None)
@given(payload=st.binary(min_size=1, max_size=400))
def test_r_5p1_8_any_binary_payload_round_trips(payload: bytes) -> None:
    assert barcodes.decode_aztec_image(barcodes.render_aztec_png(payload, scale=2)) == payload


@settings(max_examples=5, deadline=None)
@given(payload=st.binary(min_size=1, max_size=250))
def test_r_5p1_8_any_binary_payload_round_trips_through_svg(payload: bytes) -> None:
    assert barcodes.decode_aztec_image(rasterise_svg(barcodes.render_aztec_svg(payload), scale=2)) == payload


def test_r_5p1_8_no_code_reads_as_none() -> None:
    assert barcodes.decode_aztec_image(b"") is None
    assert barcodes.decode_aztec_image(b"not an image at all") is None
    blank = io.BytesIO()
    Image.new("L", (200, 200), 255).save(blank, format="PNG")
    assert barcodes.decode_aztec_image(blank.getvalue()) is None
    huge = io.BytesIO()
    Image.new("1", (4097, 4097), 1).save(huge, format="PNG")  # too many pixels to look at
    assert barcodes.decode_aztec_image(huge.getvalue()) is None


def test_r_5p1_8_render_refuses_impossible_payloads() -> None:
    with pytest.raises(ValueError):
        barcodes.render_aztec_png(b"")
    with pytest.raises(ValueError):
        barcodes.render_aztec_svg(b"\x00" * 5000)
    with pytest.raises(ValueError):
        barcodes.render_aztec_png(b"x", scale=0)


# --- the inspector's JavaScript (static/js/ticket-record.js) agrees with the server -------------

JS_MODULE = Path(__file__).resolve().parents[3] / "static" / "js" / "ticket-record.js"

JS_CHECK = """
import * as tr from "./ticket-record.mjs";
import { readFileSync } from "node:fs";
const v = JSON.parse(readFileSync("vectors.json", "utf8"));
const hex = (h) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));
const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const trust = await tr.loadTrustList(v.trust);
const verdicts = [];
for (const c of v.cases) {
  const r = await tr.verify(hex(c.hex), trust.issuerKeys, new Set(c.revoked), c.now);
  verdicts.push([r.code, r.ticket ? r.ticket.ticketId : null, r.ticket ? r.ticket.holderInitials : null]);
}
const key = await crypto.subtle.importKey(
  "pkcs8", hex(v.device_pkcs8), { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
const signed = await tr.signPresentation(key, hex(v.static), v.ts + 5);
console.log(JSON.stringify({
  verdicts,
  signed: toHex(signed),
  compressed: toHex(tr.compressPublicKey(hex(v.device_uncompressed))),
  decompressed: toHex(tr.decompressPublicKey(hex(v.device_compressed))),
}));
"""


def test_r_5p1_8_javascript_verifier_agrees_with_python(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed; the browser tests cover the JS module")
    trust_keys = {1: ISSUER.public_key()}
    static = tr.sign_static(ISSUER, FIELDS)
    ts = int(NOW.timestamp())
    genuine = tr.sign_presentation(DEVICE, static, ts)
    start, end = int(FIELDS.valid_from.timestamp()), int(FIELDS.valid_until.timestamp())
    cases: list[tuple[bytes, int, list[int]]] = [(genuine, ts, []), (genuine, ts, [987654])]
    cases += [(genuine, ts + delta, []) for delta in (-91, -90, 90, 91)]
    cases += [(tr.sign_presentation(DEVICE, static, t), t, []) for t in (start - 1, start, end - 1, end)]
    cases += [(b"", ts, []), (b"\x02" + genuine[1:], ts, []), (genuine + b"\x00", ts, [])]
    cases += [(tr.sign_presentation(tr.generate_private_key(), static, ts), ts, [])]
    for index in range(len(genuine)):
        tampered = bytearray(genuine)
        tampered[index] ^= 0xFF if index % 2 else 0x01
        cases.append((bytes(tampered), ts, []))
    expected = []
    for data, now, revoked in cases:
        verdict = tr.verify(data, trust_keys, set(revoked), datetime.fromtimestamp(now, UTC))
        ticket = verdict.ticket
        expected.append([verdict.code, ticket and ticket.ticket_id, ticket and ticket.holder_initials])
    uncompressed = DEVICE.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    vectors = {
        "trust": tr.trust_list(trust_keys, [], NOW),
        "cases": [{"hex": d.hex(), "now": n, "revoked": r} for d, n, r in cases],
        "static": static.hex(),
        "ts": ts,
        "device_pkcs8": DEVICE.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption()).hex(),
        "device_uncompressed": uncompressed.hex(),
        "device_compressed": FIELDS.device_public_key.hex(),
    }
    (tmp_path / "vectors.json").write_text(json.dumps(vectors))
    shutil.copy(JS_MODULE, tmp_path / "ticket-record.mjs")
    (tmp_path / "check.mjs").write_text(JS_CHECK)
    run = subprocess.run(
        [node, "check.mjs"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["verdicts"] == expected
    assert {code for code, _, _ in expected} >= {
        "valid", "malformed", "unsupported_version", "forged", "bad_device_signature",
        "stale", "revoked", "not_yet_valid", "expired",
    }
    assert result["compressed"] == FIELDS.device_public_key.hex()
    assert result["decompressed"] == uncompressed.hex()
    js_signed = bytes.fromhex(result["signed"])
    assert tr.verify(js_signed, trust_keys, set(), NOW).valid
    assert tr.decode(js_signed).timestamp == ts + 5
