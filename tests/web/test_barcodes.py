"""Aztec codes for mobile tickets (R-5P1-8): render with zxing-cpp, read back exactly."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from domain import ticket_record as tr
from web import barcodes

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
    widest = tr.TicketFields(**{**FIELDS.__dict__, "product_code": "Z" * 16, "holder_initials": "\U0001d400" * 4})
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
