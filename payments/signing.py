"""Tpay-style notification signatures.

Tpay signs every notification with a detached JWS (RFC 7515, appendix F) in the `X-JWS-Signature`
header: `BASE64URL(header) + ".." + BASE64URL(signature)`, RS256 over
`BASE64URL(header) + "." + BASE64URL(raw body)`.  The header's `x5u` names the signing certificate,
which must be served from Tpay's own host and chain to Tpay's root certificate.  Legacy notifications
additionally carry `md5sum = md5(id + tr_id + number_format(tr_amount, 2, '.', '') + tr_crc + security_code)`.

`sign_detached` is used by the sandbox (and the test fake); `JwsVerifier` by the adapters.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .port import NotificationRejected, RejectReason

log = logging.getLogger(__name__)

JWS_HEADER = "X-JWS-Signature"


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=" for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_detached(body: bytes, private_key: rsa.RSAPrivateKey, x5u: str) -> str:
    """Produce the `X-JWS-Signature` value for `body`, as Tpay does."""
    header = b64url_encode(json.dumps({"alg": "RS256", "x5u": x5u}, separators=(",", ":")).encode())
    signing_input = f"{header}.{b64url_encode(body)}".encode("ascii")
    signature = private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}..{b64url_encode(signature)}"


def legacy_md5sum(merchant_id: str, tr_id: str, tr_amount: str, tr_crc: str, security_code: str) -> str:
    return hashlib.md5(  # noqa: S324 - Tpay's legacy checksum, checked in addition to the JWS
        f"{merchant_id}{tr_id}{tr_amount}{tr_crc}{security_code}".encode()
    ).hexdigest()


def md5sum_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.lower(), given.strip().lower())


def load_pem_certificates(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem)


def check_x5u(x5u: str, allowed_prefix: str) -> None:
    """Accept `x5u` only when it lies under `allowed_prefix`, compared part by part on the parsed URL.

    A plain string prefix or substring test would let `https://secure.tpay.com.evil.example/` or
    `https://secure.tpay.com@evil.example/` through; here scheme, host and port must be equal and the
    path must start with the allowed path.
    """
    try:
        got = urlsplit(x5u)
        want = urlsplit(allowed_prefix)
        got_port, want_port = got.port, want.port
    except ValueError as exc:
        raise NotificationRejected(RejectReason.UNTRUSTED_X5U, "unparsable x5u") from exc
    want_path = want.path if want.path.endswith("/") else want.path + "/"
    ok = (
        got.scheme.lower() == want.scheme.lower()
        and got.username is None
        and got.password is None
        and (got.hostname or "").lower() == (want.hostname or "").lower()
        and got_port == want_port
        and got.path.startswith(want_path)
        and ".." not in got.path.split("/")
        and not got.query
        and not got.fragment
    )
    if not ok:
        raise NotificationRejected(RejectReason.UNTRUSTED_X5U, "x5u is not under the trusted prefix")


def check_chain(chain: list[x509.Certificate], root: x509.Certificate, now: dt.datetime) -> x509.Certificate:
    """Check that the first certificate (the signer) chains to `root`; return the signer.

    `chain` is the signer followed by any intermediates, as served at the x5u URL.  Every certificate
    on the way must be directly signed by the next one; the last must be signed by `root` (or be
    `root` itself).

    Validity dates are *not* enforced, as in Tpay's own client (tpay-openapi-php
    `JWSVerifiedPaymentNotification::checkJwsSignature` checks the chain's signatures only): the
    certificate is fetched from Tpay's own host (x5u is pinned), and rejecting on a date would make
    every notification fail - and Tpay resend them forever - the day Tpay is late renewing it.  A
    certificate outside its dates is logged as a warning so operators notice.
    """
    if not chain:
        raise NotificationRejected(RejectReason.UNTRUSTED_CERTIFICATE, "empty certificate chain")
    path = [*chain]
    if path[-1] != root:
        path.append(root)
    for cert in path:
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            log.warning("payment notification certificate %s is outside its validity dates (accepted, as Tpay's client does)",
                        cert.subject.rfc4514_string()[:120])
    for child, parent in zip(path, path[1:], strict=False):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise NotificationRejected(RejectReason.UNTRUSTED_CERTIFICATE, "certificate chain broken") from exc
    # A one-element path means the signer *is* the configured root (accepted, as by Tpay's client; neither
    # Tpay nor the sandbox, whose signer is issued by a separate root since issue 19, signs with its root).
    return chain[0]


Fetcher = Callable[[str], Awaitable[bytes]]


class JwsVerifier:
    """Verifies `X-JWS-Signature` headers; caches certificates fetched from x5u URLs."""

    def __init__(
        self,
        *,
        allowed_x5u_prefix: str,
        fetch: Fetcher,
        root_pem: bytes | None = None,
        root_url: str | None = None,
        cache_seconds: float = 3600.0,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if root_pem is None and root_url is None:
            raise ValueError("a root certificate (PEM) or a URL to fetch it from is required")
        self.allowed_x5u_prefix = allowed_x5u_prefix
        self._fetch = fetch
        self._root: x509.Certificate | None = load_pem_certificates(root_pem)[0] if root_pem else None
        self._root_url = root_url
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, list[x509.Certificate]]] = {}
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    async def _root_cert(self) -> x509.Certificate:
        if self._root is None:
            assert self._root_url is not None
            try:
                self._root = load_pem_certificates(await self._fetch(self._root_url))[0]
            except NotificationRejected:
                raise
            except Exception as exc:
                raise NotificationRejected(RejectReason.CERTIFICATE_UNAVAILABLE, "root certificate unavailable") from exc
        return self._root

    async def _certificates(self, x5u: str) -> list[x509.Certificate]:
        hit = self._cache.get(x5u)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        try:
            certs = load_pem_certificates(await self._fetch(x5u))
        except Exception as exc:
            raise NotificationRejected(RejectReason.CERTIFICATE_UNAVAILABLE, "x5u certificate unavailable") from exc
        self._cache[x5u] = (time.monotonic() + self._cache_seconds, certs)
        return certs

    async def verify(self, body: bytes, signature_header: str | None) -> None:
        """Raise `NotificationRejected` unless `signature_header` is a valid Tpay JWS over `body`."""
        if not signature_header:
            raise NotificationRejected(RejectReason.MISSING_SIGNATURE)
        parts = signature_header.strip().split(".")
        if len(parts) != 3 or parts[1] not in ("", b64url_encode(body)):
            raise NotificationRejected(RejectReason.MALFORMED_SIGNATURE, "not a detached JWS")
        header_b64, _, signature_b64 = parts
        try:
            header = json.loads(b64url_decode(header_b64))
            signature = b64url_decode(signature_b64)
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise NotificationRejected(RejectReason.MALFORMED_SIGNATURE, "undecodable JWS") from exc
        if not isinstance(header, dict):
            raise NotificationRejected(RejectReason.MALFORMED_SIGNATURE, "JWS header is not an object")
        if header.get("alg") != "RS256":
            raise NotificationRejected(RejectReason.UNSUPPORTED_ALGORITHM, "only RS256 is accepted")
        if header.get("crit"):
            raise NotificationRejected(RejectReason.MALFORMED_SIGNATURE, "unsupported critical header")
        x5u = header.get("x5u")
        if not isinstance(x5u, str) or not x5u:
            raise NotificationRejected(RejectReason.MALFORMED_SIGNATURE, "missing x5u")
        check_x5u(x5u, self.allowed_x5u_prefix)
        root = await self._root_cert()
        signer = check_chain(await self._certificates(x5u), root, self._clock())
        public_key = signer.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise NotificationRejected(RejectReason.UNTRUSTED_CERTIFICATE, "signer key is not RSA")
        signing_input = f"{header_b64}.{b64url_encode(body)}".encode("ascii")
        try:
            public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature as exc:
            raise NotificationRejected(RejectReason.BAD_SIGNATURE) from exc
