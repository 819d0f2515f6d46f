"""Photos and entitlement scans of card applications: checked (R-KKM-3), cleaned, cropped, encrypted at rest.

A photo is accepted only when it is really a JPEG (its first bytes and Pillow's detected format, never the
file name), at most `MAX_UPLOAD` bytes (bounded before the body is read: the controller checks
Content-Length, and a body past it is cut off while reading), no larger than `MAX_PIXELS` (decompression
bombs are refused before the pixels are decoded) and at least 320×240 (R-KKM-3). It is then re-encoded
(EXIF, GPS and every other metadata dropped) and cropped to the printed photo's 25×30 mm (5:6, portrait).
Stored bytes are AES-256-GCM with the key EKP_PHOTO_KEY, bound to the application's id.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from PIL import Image, ImageOps, UnidentifiedImageError

from domain.card_application import ApplicationProblem, PhotoFile, photo_problems

MAX_UPLOAD = 5 * 1024 * 1024  # bytes, each file
MAX_PIXELS = 40_000_000  # a 40-megapixel photo is already more than any phone takes
PRINT_ASPECT = (5, 6)  # 25 × 30 mm, width : height
PRINT_SIZE = (500, 600)  # pixels kept (about 500 dpi at 25 × 30 mm)
JPEG_MAGIC = b"\xff\xd8\xff"
PDF_MAGIC = b"%PDF-"


class PhotoRefused(Exception):
    """Why an upload is refused: a message code (`card_applications.photo.*`)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def _open_jpeg(data: bytes, *, too_big: str, not_jpeg: str) -> Image.Image:
    if len(data) > MAX_UPLOAD:
        raise PhotoRefused(too_big)
    if not data.startswith(JPEG_MAGIC):
        raise PhotoRefused(not_jpeg)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=["JPEG"])
            if image.format != "JPEG":
                raise PhotoRefused(not_jpeg)
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise PhotoRefused("card_applications.photo.bomb")
            image.load()
    except PhotoRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoRefused("card_applications.photo.bomb") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise PhotoRefused(not_jpeg) from None
    return image


def _jpeg_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90, optimize=True)  # no exif=: nothing of the original's metadata
    return out.getvalue()


def clean_photo(data: bytes) -> bytes:
    """The photo as it will be printed: checked, turned upright, metadata dropped, cropped to 5:6. Raises
    `PhotoRefused`."""
    image = _open_jpeg(data, too_big="card_applications.photo.too_big", not_jpeg="card_applications.photo.not_jpeg")
    problems = photo_problems(PhotoFile(width=image.width, height=image.height, format=image.format or ""))
    if ApplicationProblem.PHOTO_NOT_JPEG in problems:
        raise PhotoRefused("card_applications.photo.not_jpeg")
    if ApplicationProblem.PHOTO_TOO_SMALL in problems:
        raise PhotoRefused("card_applications.photo.too_small")
    image = ImageOps.exif_transpose(image).convert("RGB")
    cropped = ImageOps.fit(image, _fit_size(image.size), method=Image.Resampling.LANCZOS, centering=(0.5, 0.4))
    if cropped.width > PRINT_SIZE[0]:
        cropped = cropped.resize(PRINT_SIZE, Image.Resampling.LANCZOS)
    return _jpeg_bytes(cropped)


def _fit_size(size: tuple[int, int]) -> tuple[int, int]:
    """The largest 5:6 box inside `size`."""
    width, height = size
    aw, ah = PRINT_ASPECT
    unit = min(width // aw, height // ah)
    return unit * aw, unit * ah


@dataclass(frozen=True)
class Scan:
    data: bytes
    media_type: str  # image/jpeg | application/pdf


def clean_scan(data: bytes) -> Scan:
    """An entitlement document's scan: a JPEG (re-encoded, metadata dropped) or a PDF, at most MAX_UPLOAD."""
    if len(data) > MAX_UPLOAD:
        raise PhotoRefused("card_applications.scan.too_big")
    if data.startswith(PDF_MAGIC):
        return Scan(data, "application/pdf")
    image = _open_jpeg(data, too_big="card_applications.scan.too_big", not_jpeg="card_applications.scan.format")
    return Scan(_jpeg_bytes(ImageOps.exif_transpose(image).convert("RGB")), "image/jpeg")


def encrypt(key: bytes, application_id: int, what: str, data: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key[:32]).encrypt(nonce, data, f"card-application:{application_id}:{what}".encode())


def decrypt(key: bytes, application_id: int, what: str, blob: bytes) -> bytes:
    return AESGCM(key[:32]).decrypt(blob[:12], blob[12:], f"card-application:{application_id}:{what}".encode())
