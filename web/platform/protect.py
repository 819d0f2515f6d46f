"""Protection of personal data at rest: PESEL is kept as a keyed hash (for matching cards) and
encrypted with AES-GCM (to show it masked to its owner). Neither the key nor the number is logged."""

from __future__ import annotations

import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def _subkey(key: bytes, purpose: bytes) -> bytes:
    return hmac.new(key, b"ekp:" + purpose, hashlib.sha256).digest()


@lru_cache(maxsize=16)
def _aead(key: bytes, purpose: bytes) -> AESGCM:
    """The cipher under a purpose's subkey, made once per key (deriving and setting up the key cost more than
    decrypting a PESEL, on every account page)."""
    return AESGCM(_subkey(key, purpose))


def pesel_hash(key: bytes, pesel: str) -> str:
    return hmac.new(_subkey(key, b"pesel-match"), pesel.encode(), hashlib.sha256).hexdigest()


def encrypt_pesel(key: bytes, pesel: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_subkey(key, b"pesel-encrypt")).encrypt(nonce, pesel.encode(), b"pesel")


def decrypt_pesel(key: bytes, blob: bytes) -> str:
    return _aead(key, b"pesel-encrypt").decrypt(blob[:12], blob[12:], b"pesel").decode()


def token_hash(token: str) -> str:
    """E-mailed links are stored only as a hash, so a database leak cannot activate or reset anything."""
    return hashlib.sha256(token.encode()).hexdigest()


def encrypt_totp_secret(key: bytes, user_id: int, secret: str) -> bytes:
    """A second factor's secret at rest (R-AUTH-3): AES-GCM under a key derived from EKP_SECRET_KEY,
    bound to its account (a secret copied to another row does not decrypt)."""
    nonce = os.urandom(12)
    return nonce + AESGCM(_subkey(key, b"totp-encrypt")).encrypt(nonce, secret.encode(), b"totp:%d" % user_id)


def decrypt_totp_secret(key: bytes, user_id: int, blob: bytes) -> str:
    return AESGCM(_subkey(key, b"totp-encrypt")).decrypt(blob[:12], blob[12:], b"totp:%d" % user_id).decode()


def recovery_code_hash(key: bytes, user_id: int, code: str) -> str:
    """Recovery codes are kept only as a keyed hash (a database leak alone cannot test guesses offline)."""
    return hmac.new(_subkey(key, b"recovery-code"), b"%d:" % user_id + code.encode(), hashlib.sha256).hexdigest()
