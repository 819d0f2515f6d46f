"""Aztec codes for mobile tickets, drawn and read with zxing-cpp (no I/O here).

The payload is the raw binary presentation from ``domain.ticket_record`` (no base45/base64: zxing-cpp
and zxing-wasm both write and read binary Aztec bytes exactly). The phone normally draws the code
itself in JavaScript; these helpers serve the server side: rendering a code for a page or an e-mail,
and decoding a photo uploaded by a handheld terminal to the verification endpoint.
"""

from __future__ import annotations

import io
import re
import warnings

import zxingcpp
from PIL import Image, UnidentifiedImageError

AZTEC_EC_LEVEL = "23%"
"""Error-correction share; the ISO 24778 recommended minimum (zxing-cpp may round it up)."""

QUIET_ZONE_MODULES = 2
"""White margin drawn around the symbol (Aztec needs none by spec; cameras like some)."""

MAX_IMAGE_PIXELS = 4096 * 4096
"""Largest image ``decode_aztec_image`` will look at; bigger uploads are refused, not decoded."""

_SVG_OPEN = re.compile(r"<svg\b[^>]*>")
_SVG_DESC = re.compile(r"<desc>.*?</desc>", re.DOTALL)


def _aztec(payload: bytes) -> zxingcpp.Barcode:
    if not payload:
        raise ValueError("an Aztec payload must not be empty")
    return zxingcpp.create_barcode(bytes(payload), zxingcpp.BarcodeFormat.Aztec, ec_level=AZTEC_EC_LEVEL)


def render_aztec_png(payload: bytes, scale: int = 4) -> bytes:
    """A 1-bit PNG of the Aztec code for ``payload``, ``scale`` pixels per module, with a quiet zone.

    Raises ValueError for an empty payload or one too long for an Aztec symbol.
    """
    if scale < 1:
        raise ValueError("scale must be at least 1")
    image = _aztec(payload).to_image(scale=scale)
    height, width = image.shape[:2]
    symbol = Image.frombytes("L", (width, height), memoryview(image).tobytes())
    margin = QUIET_ZONE_MODULES * scale
    canvas = Image.new("1", (width + 2 * margin, height + 2 * margin), 1)
    canvas.paste(symbol.point(lambda value: 255 if value >= 128 else 0).convert("1"), (margin, margin))
    out = io.BytesIO()
    canvas.save(out, format="PNG", optimize=True)
    return out.getvalue()


def render_aztec_svg(payload: bytes, label: str = "Aztec") -> str:
    """An inline-ready ``<svg>`` element (no XML prolog) that scales to its container.

    One user unit per module, a white quiet zone, ``shape-rendering="crispEdges"`` and an
    accessible ``aria-label``. Raises ValueError like ``render_aztec_png``.
    """
    barcode = _aztec(payload)
    height, width = barcode.to_image(scale=1).shape[:2]
    source = barcode.to_svg(scale=1)
    opening = _SVG_OPEN.search(source)
    closing = source.rfind("</svg>")
    if opening is None or closing < opening.end():
        raise ValueError("zxing-cpp returned an SVG this helper does not understand")
    inner = source[opening.end() : closing]
    # ids would clash when several codes share a page; the description is zint's advertisement.
    inner = _SVG_DESC.sub("", inner).replace(' id="barcode"', "")
    inner = " ".join(inner.split())
    q = QUIET_ZONE_MODULES
    full_width, full_height = width + 2 * q, height + 2 * q
    safe_label = (
        label.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {full_width} {full_height}" '
        f'role="img" aria-label="{safe_label}" shape-rendering="crispEdges">'
        f'<rect width="{full_width}" height="{full_height}" fill="#FFFFFF"/>'
        f'<g transform="translate({q} {q})">{inner}</g></svg>'
    )


def decode_aztec_image(image_bytes: bytes) -> bytes | None:
    """The payload of the first Aztec code found in a PNG/JPEG/... image, or None.

    None also for bytes that are not an image, or an image larger than MAX_IMAGE_PIXELS.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(bytes(image_bytes))) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    return None
                grey = image.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning, SyntaxError):
        return None
    for barcode in zxingcpp.read_barcodes(grey, formats=zxingcpp.BarcodeFormat.Aztec):
        if barcode.valid:
            return bytes(barcode.bytes)
    return None
