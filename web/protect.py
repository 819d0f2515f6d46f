"""Protection of personal data at rest: PESEL is kept as a keyed hash (for matching cards) and
encrypted with AES-GCM (to show it masked to its owner). Neither the key nor the number is logged."""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def _subkey(key: bytes, purpose: bytes) -> bytes:
    return hmac.new(key, b"ekp:" + purpose, hashlib.sha256).digest()


def pesel_hash(key: bytes, pesel: str) -> str:
    return hmac.new(_subkey(key, b"pesel-match"), pesel.encode(), hashlib.sha256).hexdigest()


def encrypt_pesel(key: bytes, pesel: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_subkey(key, b"pesel-encrypt")).encrypt(nonce, pesel.encode(), b"pesel")


def decrypt_pesel(key: bytes, blob: bytes) -> str:
    return AESGCM(_subkey(key, b"pesel-encrypt")).decrypt(blob[:12], blob[12:], b"pesel").decode()


def token_hash(token: str) -> str:
    """E-mailed links are stored only as a hash, so a database leak cannot activate or reset anything."""
    return hashlib.sha256(token.encode()).hexdigest()
