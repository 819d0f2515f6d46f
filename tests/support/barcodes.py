"""Aztec codes for mobile tickets, drawn and read with zxing-cpp (no I/O here).

The payload is the raw binary presentation from ``domain.ticket_record`` (no base45/base64: zxing-cpp
and zxing-wasm both write and read binary Aztec bytes exactly). The phone normally draws the code
itself in JavaScript; these helpers serve the tests and benchmarks (zxing-cpp is a dev dependency, not
part of the running app): rendering a code, and decoding a screenshot or a photo of one.
"""

from __future__ import annotations

import io
import warnings

import zxingcpp
from PIL import Image, UnidentifiedImageError

AZTEC_EC_LEVEL = "23%"
"""Error-correction share; the ISO 24778 recommended minimum (zxing-cpp may round it up)."""

QUIET_ZONE_MODULES = 2
"""White margin drawn around the symbol (Aztec needs none by spec; cameras like some)."""

MAX_IMAGE_PIXELS = 4096 * 4096
"""Largest image ``decode_aztec_image`` will look at; bigger uploads are refused, not decoded."""


def _aztec(payload: bytes) -> zxingcpp.Barcode:
    if not payload:
        raise ValueError("an Aztec payload must not be empty")
    return zxingcpp.create_barcode(bytes(payload), zxingcpp.BarcodeFormat.Aztec, ec_level=AZTEC_EC_LEVEL)


def _modules(payload: bytes) -> tuple[int, int, bytes]:
    """(width, height, one byte per module: 0 dark, 255 light) without quiet zone."""
    image = _aztec(payload).to_image(scale=1, add_quiet_zones=False)
    height, width = image.shape[:2]
    return width, height, memoryview(image).tobytes()


def render_aztec_png(payload: bytes, scale: int = 4) -> bytes:
    """A 1-bit PNG of the Aztec code for ``payload``, ``scale`` pixels per module, with a quiet zone.

    Raises ValueError for an empty payload or one too long for an Aztec symbol.
    """
    if scale < 1:
        raise ValueError("scale must be at least 1")
    width, height, modules = _modules(payload)
    q = QUIET_ZONE_MODULES
    symbol = Image.frombytes("L", (width, height), modules).convert("1", dither=Image.Dither.NONE)
    canvas = Image.new("1", (width + 2 * q, height + 2 * q), 1)
    canvas.paste(symbol, (q, q))
    if scale > 1:
        canvas = canvas.resize((canvas.width * scale, canvas.height * scale), Image.Resampling.NEAREST)
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


def render_aztec_svg(payload: bytes, label: str = "Aztec") -> str:
    """An inline-ready ``<svg>`` element (no XML prolog) that scales to its container.

    One user unit per module, a white quiet zone, dark modules as one path of horizontal runs,
    ``shape-rendering="crispEdges"`` and an accessible ``aria-label``. Raises ValueError like
    ``render_aztec_png``.
    """
    width, height, modules = _modules(payload)
    q = QUIET_ZONE_MODULES
    runs: list[str] = []
    for y in range(height):
        row = modules[y * width : (y + 1) * width]
        x = 0
        while x < width:
            if row[x] < 128:
                start = x
                while x < width and row[x] < 128:
                    x += 1
                runs.append(f"M{start + q} {y + q}h{x - start}v1h-{x - start}Z")
            else:
                x += 1
    full_width, full_height = width + 2 * q, height + 2 * q
    safe_label = (
        label.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {full_width} {full_height}" '
        f'role="img" aria-label="{safe_label}" shape-rendering="crispEdges">'
        f'<rect width="{full_width}" height="{full_height}" fill="#FFFFFF"/>'
        f'<path fill="#000000" d="{"".join(runs)}"/></svg>'
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
