"""The mobile-ticket barcode record (R-5P1-8; DESIGN.md "Mobile tickets and inspection").

A period ticket on a mobile carrier is shown at inspection as an Aztec code drawn on the phone.
The code carries a *presentation*:

    presentation = static record || timestamp (u32) || device signature (64 bytes)

* The **static record** is issued and signed by the server (ECDSA P-256 / SHA-256, raw r||s) and
  names the public key of a non-exportable WebCrypto key generated in the passenger's browser.
* At inspection the phone appends the current time and signs ``static record || timestamp`` with
  that device key, so a screenshot goes stale and a copied record is useless without the key.

Byte layout, signature inputs, verification order and the trust-list format are documented in
``docs/ticket-record.md``; ``static/js/ticket-record.js`` mirrors this module for the offline
inspector app. Everything here is pure: no clock reads (``now`` is an argument), no I/O.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization as _serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

FORMAT_VERSION = 1
"""Value of byte 0 of every record this module writes and the only one it accepts."""

ISSUER_SIGNATURE_CONTEXT = b"EKP1I"
"""Prefix of the issuer signature input (domain separation from any other use of the key)."""

DEVICE_SIGNATURE_CONTEXT = b"EKP1D"
"""Prefix of the device signature input."""

REFRESH_SECONDS = 30
"""The phone redraws the code with a new timestamp this often."""

DEFAULT_FRESHNESS_SECONDS = 90
"""A presentation is fresh when its timestamp is within this many seconds of the inspector's clock,
in either direction: one 30 s refresh period plus 60 s of clock difference between the two devices."""

MAX_PRESENTATION_BYTES = 400
"""Hard budget for the Aztec payload (DESIGN.md); a v1 presentation is at most 218 bytes."""

SIGNATURE_BYTES = 64
DEVICE_KEY_BYTES = 33
TIMESTAMP_BYTES = 4
MAX_PRODUCT_CODE_BYTES = 16
MAX_INITIALS_BYTES = 16
MAX_INITIALS_LETTERS = 4
MAX_KEY_ID = 0xFFFF
MAX_TICKET_ID = (1 << 48) - 1
MAX_MINUTES = 4_223_371_679
"""Unix minutes of 9999-12-31 23:59 UTC (the last minute a datetime can hold; fits in u32)."""
MAX_TIMESTAMP = 0xFFFFFFFF
MIN_BIRTH_YEAR = 1900
MAX_BIRTH_YEAR = 2200

# version u8, key id u16, ticket id u48 (as u16 + u32), valid from u32, valid until u32,
# birth year u16, device key 33 bytes.
_HEADER = struct.Struct(">BHHIIIH33s")
_HEADER_BYTES = _HEADER.size  # 52
MIN_STATIC_BYTES = _HEADER_BYTES + 1 + 1 + 1 + SIGNATURE_BYTES  # 119: product code of 1 byte
MAX_STATIC_BYTES = _HEADER_BYTES + 1 + MAX_PRODUCT_CODE_BYTES + 1 + MAX_INITIALS_BYTES + SIGNATURE_BYTES
PRESENTATION_SUFFIX_BYTES = TIMESTAMP_BYTES + SIGNATURE_BYTES  # 68

_CURVE = ec.SECP256R1()
_ECDSA = ec.ECDSA(hashes.SHA256())
_P256_ORDER_BYTES = 32


class Reason(StrEnum):
    """Why a presentation is not valid (machine codes; the web layer translates them)."""

    MALFORMED = "malformed"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_KEY = "unknown_key"
    FORGED = "forged"
    BAD_DEVICE_SIGNATURE = "bad_device_signature"
    STALE = "stale"
    REVOKED = "revoked"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"


class Revocation(StrEnum):
    """Why a ticket, or one phone's record of it, is revoked (R-TKT-1, R-TKT-4); the verdict names it."""

    DEVICE_UNBOUND = "device_unbound"
    """The passenger unbound this phone: its record no longer verifies (the ticket on other phones does)."""
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    CHARGEBACK = "chargeback"
    CARD_BLOCKED = "card_blocked"
    OTHER = "other"


class RecordError(ValueError):
    """Bytes that are not a ticket record; ``reason`` is MALFORMED or UNSUPPORTED_VERSION."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class TicketFields:
    """What the issuer signs: the ticket as the inspector compares it with an ID document.

    ``valid_from`` is inclusive and ``valid_until`` exclusive; both are timezone-aware and fall on
    whole minutes (a Kraków monthly ticket from 5 March to 4 April inclusive runs from
    5 March 00:00 Europe/Warsaw to 5 April 00:00 Europe/Warsaw). ``product_code`` is the
    machine code of the product including its fare kind (normal / reduced), printable ASCII.
    ``holder_initials`` is empty for a bearer ticket; ``birth_year`` is None when not recorded.
    ``device_public_key`` is the 33-byte compressed SEC1 point (see ``compressed_device_key``).
    """

    key_id: int
    ticket_id: int
    product_code: str
    valid_from: datetime
    valid_until: datetime
    holder_initials: str
    birth_year: int | None
    device_public_key: bytes


@dataclass(frozen=True)
class StaticRecord:
    """A decoded static record: the signed fields plus the issuer signature and exact bytes."""

    version: int
    fields: TicketFields
    issuer_signature: bytes
    raw: bytes

    @property
    def signed_body(self) -> bytes:
        """The record without its issuer signature (what the issuer signature covers)."""
        return self.raw[:-SIGNATURE_BYTES]


@dataclass(frozen=True)
class Presentation:
    """A decoded presentation: static record, the phone's timestamp and its device signature."""

    record: StaticRecord
    timestamp: int
    device_signature: bytes

    @property
    def presented_at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp, UTC)


@dataclass(frozen=True)
class Verdict:
    """The inspector's answer.

    ``ticket`` is set as soon as the issuer signature has been checked, so an expired, revoked,
    stale or wrong-device ticket still shows what it is; it is None when the record cannot be
    trusted at all (malformed, unsupported version, unknown key, forged).
    """

    valid: bool
    reason: Reason | None
    ticket: TicketFields | None = None
    presented_at: datetime | None = None
    revocation: Revocation | None = None
    """With reason REVOKED: why (the phone was unbound, the ticket cancelled, refunded, ...)."""

    @property
    def code(self) -> str:
        """``"valid"`` or the reason code."""
        return "valid" if self.reason is None else self.reason.value


# --- keys and signatures -------------------------------------------------------------------------


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    """A new P-256 key (issuer keys in production, device keys in tests and benchmarks)."""
    return ec.generate_private_key(_CURVE)


def compressed_device_key(public_key: bytes | ec.EllipticCurvePublicKey) -> bytes:
    """The 33-byte compressed form of a P-256 public key.

    Accepts a key object, WebCrypto's ``exportKey("raw")`` output (65 bytes, 0x04||x||y) or an
    already-compressed point. Raises ValueError for anything that is not a point on P-256.
    """
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        key = public_key
    else:
        raw = bytes(public_key)
        if len(raw) not in (33, 65):
            raise ValueError("a P-256 public key is 33 or 65 bytes")
        key = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, raw)
    if not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("device key must be on P-256")
    return key.public_bytes(
        encoding=_serialization.Encoding.X962,
        format=_serialization.PublicFormat.CompressedPoint,
    )


def _raw_signature(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(_P256_ORDER_BYTES, "big") + s.to_bytes(_P256_ORDER_BYTES, "big")


def _verify_raw(public_key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes) -> bool:
    if len(signature) != SIGNATURE_BYTES:
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if r == 0 or s == 0:
        return False
    try:
        public_key.verify(encode_dss_signature(r, s), message, _ECDSA)
    except InvalidSignature:
        return False
    return True


def issuer_signature_input(signed_body: bytes) -> bytes:
    """Exactly the bytes the issuer signs: context tag || record without its signature."""
    return ISSUER_SIGNATURE_CONTEXT + signed_body


def device_signature_input(static_record: bytes, timestamp: int) -> bytes:
    """Exactly the bytes the device signs: context tag || whole static record || u32 timestamp."""
    _check_timestamp(timestamp)
    return DEVICE_SIGNATURE_CONTEXT + static_record + timestamp.to_bytes(TIMESTAMP_BYTES, "big")


# --- encoding ------------------------------------------------------------------------------------


def _minutes(moment: datetime, name: str) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    seconds = moment.timestamp()
    if moment.microsecond or seconds % 60:
        raise ValueError(f"{name} must fall on a whole UTC minute")
    minutes = int(seconds) // 60
    if not 0 <= minutes <= MAX_MINUTES:
        raise ValueError(f"{name} is out of range")
    return minutes


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise TypeError("timestamp must be an int (Unix seconds)")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError("timestamp is out of range")


def _valid_product_code(code: bytes) -> bool:
    return 1 <= len(code) <= MAX_PRODUCT_CODE_BYTES and all(0x21 <= b <= 0x7E for b in code)


def encode_static(fields: TicketFields) -> bytes:
    """The unsigned static record body (everything the issuer signature covers).

    Raises ValueError when a field does not fit the format.
    """
    if fields.key_id < 0 or fields.key_id > MAX_KEY_ID:
        raise ValueError("key_id must fit in 16 bits")
    if fields.ticket_id < 0 or fields.ticket_id > MAX_TICKET_ID:
        raise ValueError("ticket_id must fit in 48 bits")
    valid_from = _minutes(fields.valid_from, "valid_from")
    valid_until = _minutes(fields.valid_until, "valid_until")
    if valid_until <= valid_from:
        raise ValueError("valid_until must be after valid_from")
    try:
        product = fields.product_code.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ValueError("product_code must be printable ASCII") from exc
    if not _valid_product_code(product):
        raise ValueError("product_code must be 1-16 printable ASCII characters without spaces")
    initials_text = fields.holder_initials
    if len(initials_text) > MAX_INITIALS_LETTERS or not all(ch.isalpha() for ch in initials_text):
        raise ValueError("holder_initials must be at most 4 letters")
    initials = initials_text.encode("utf-8")
    if len(initials) > MAX_INITIALS_BYTES:
        raise ValueError("holder_initials is too long")
    if fields.birth_year is None:
        birth_year = 0
    elif MIN_BIRTH_YEAR <= fields.birth_year <= MAX_BIRTH_YEAR:
        birth_year = fields.birth_year
    else:
        raise ValueError("birth_year is out of range")
    device_key = bytes(fields.device_public_key)
    if len(device_key) != DEVICE_KEY_BYTES or compressed_device_key(device_key) != device_key:
        raise ValueError("device_public_key must be a 33-byte compressed P-256 point")
    header = _HEADER.pack(
        FORMAT_VERSION,
        fields.key_id,
        fields.ticket_id >> 32,
        fields.ticket_id & 0xFFFFFFFF,
        valid_from,
        valid_until,
        birth_year,
        device_key,
    )
    return header + bytes([len(product)]) + product + bytes([len(initials)]) + initials


def sign_static(private_key: ec.EllipticCurvePrivateKey, fields: TicketFields) -> bytes:
    """The complete static record: ``encode_static(fields)`` followed by the issuer signature."""
    body = encode_static(fields)
    der = private_key.sign(issuer_signature_input(body), _ECDSA)
    return body + _raw_signature(der)


def encode_presentation(static_bytes: bytes, timestamp: int, device_signature: bytes) -> bytes:
    """The Aztec payload: static record || u32 timestamp || 64-byte device signature."""
    _check_timestamp(timestamp)
    if len(device_signature) != SIGNATURE_BYTES:
        raise ValueError("device_signature must be 64 bytes (raw r||s)")
    decode_static(static_bytes)  # refuses to wrap anything that is not a static record
    return bytes(static_bytes) + timestamp.to_bytes(TIMESTAMP_BYTES, "big") + bytes(device_signature)


def sign_presentation(
    device_private_key: ec.EllipticCurvePrivateKey, static_bytes: bytes, timestamp: int
) -> bytes:
    """What the phone does at inspection (the JS module does the same with WebCrypto)."""
    der = device_private_key.sign(device_signature_input(bytes(static_bytes), timestamp), _ECDSA)
    return encode_presentation(static_bytes, timestamp, _raw_signature(der))


# --- decoding ------------------------------------------------------------------------------------


def _malformed(detail: str) -> RecordError:
    return RecordError(Reason.MALFORMED, detail)


def _parse_static(data: bytes) -> tuple[StaticRecord, int]:
    """Parse a static record at the start of ``data``; return it and its length."""
    if not data:
        raise _malformed("empty")
    if data[0] != FORMAT_VERSION:
        raise RecordError(Reason.UNSUPPORTED_VERSION, f"version {data[0]}")
    if len(data) < MIN_STATIC_BYTES:
        raise _malformed("too short")
    (_, key_id, ticket_hi, ticket_lo, valid_from, valid_until, birth_year, device_key) = (
        _HEADER.unpack_from(data, 0)
    )
    offset = _HEADER_BYTES
    product_len = data[offset]
    offset += 1
    if not 1 <= product_len <= MAX_PRODUCT_CODE_BYTES or len(data) < offset + product_len + 1:
        raise _malformed("product code length")
    product = data[offset : offset + product_len]
    offset += product_len
    if not _valid_product_code(product):
        raise _malformed("product code characters")
    initials_len = data[offset]
    offset += 1
    if initials_len > MAX_INITIALS_BYTES or len(data) < offset + initials_len + SIGNATURE_BYTES:
        raise _malformed("initials length")
    try:
        initials = data[offset : offset + initials_len].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed("initials are not UTF-8") from exc
    offset += initials_len
    signature = data[offset : offset + SIGNATURE_BYTES]
    offset += SIGNATURE_BYTES
    if valid_until <= valid_from or valid_until > MAX_MINUTES:
        raise _malformed("validity period")
    if device_key[0] not in (2, 3):
        raise _malformed("device key is not a compressed point")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, device_key)
    except ValueError as exc:
        raise _malformed("device key is not on P-256") from exc
    fields = TicketFields(
        key_id=key_id,
        ticket_id=(ticket_hi << 32) | ticket_lo,
        product_code=product.decode("ascii"),
        valid_from=datetime.fromtimestamp(valid_from * 60, UTC),
        valid_until=datetime.fromtimestamp(valid_until * 60, UTC),
        holder_initials=initials,
        birth_year=birth_year or None,
        device_public_key=device_key,
    )
    record = StaticRecord(
        version=FORMAT_VERSION, fields=fields, issuer_signature=signature, raw=bytes(data[:offset])
    )
    return record, offset


def decode_static(data: bytes) -> StaticRecord:
    """Decode a complete static record (nothing may follow it). Raises RecordError."""
    data = bytes(data)
    record, length = _parse_static(data)
    if length != len(data):
        raise _malformed("trailing bytes after static record")
    return record


def decode(data: bytes) -> Presentation:
    """Decode a presentation (the Aztec payload). Checks structure only, not signatures.

    Raises RecordError with reason MALFORMED or UNSUPPORTED_VERSION.
    """
    data = bytes(data)
    if len(data) > MAX_PRESENTATION_BYTES:
        raise _malformed("too long")
    record, offset = _parse_static(data)
    if len(data) != offset + PRESENTATION_SUFFIX_BYTES:
        raise _malformed("presentation length")
    timestamp = int.from_bytes(data[offset : offset + TIMESTAMP_BYTES], "big")
    device_signature = data[offset + TIMESTAMP_BYTES :]
    return Presentation(record=record, timestamp=timestamp, device_signature=device_signature)


# --- verification --------------------------------------------------------------------------------


def _revocation(value: object) -> Revocation:
    try:
        return Revocation(str(value))
    except ValueError:
        return Revocation.OTHER


def verify(
    presentation_bytes: bytes,
    issuer_keys: Mapping[int, ec.EllipticCurvePublicKey],
    revoked: Collection[int] | Mapping[int, str],
    now: datetime,
    freshness_seconds: int = DEFAULT_FRESHNESS_SECONDS,
    revoked_devices: Collection[tuple[int, bytes]] = (),
) -> Verdict:
    """Check a scanned presentation, in the order documented in docs/ticket-record.md.

    1 structure and version, 2 issuer key id, 3 issuer signature, 4 device signature,
    5 freshness of the timestamp (|now - ts| <= freshness_seconds), 6 revocation list: the ticket id
    (``revoked``: ids, or id -> Revocation value) or the pair (ticket id, 33-byte device key) of a phone
    that was unbound (``revoked_devices``), 7 validity period (valid_from <= now < valid_until).
    The first failing step is the reason; a REVOKED verdict names why in ``revocation``.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    try:
        presentation = decode(presentation_bytes)
    except RecordError as exc:
        return Verdict(valid=False, reason=exc.reason)
    record = presentation.record
    fields = record.fields
    issuer_key = issuer_keys.get(fields.key_id)
    if issuer_key is None:
        return Verdict(valid=False, reason=Reason.UNKNOWN_KEY)
    if not _verify_raw(issuer_key, record.issuer_signature, issuer_signature_input(record.signed_body)):
        return Verdict(valid=False, reason=Reason.FORGED)
    presented_at = presentation.presented_at

    def refuse(reason: Reason) -> Verdict:
        return Verdict(valid=False, reason=reason, ticket=fields, presented_at=presented_at)

    device_key = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, fields.device_public_key)
    device_input = device_signature_input(record.raw, presentation.timestamp)
    if not _verify_raw(device_key, presentation.device_signature, device_input):
        return refuse(Reason.BAD_DEVICE_SIGNATURE)
    now_seconds = int(now.timestamp())
    if abs(now_seconds - presentation.timestamp) > freshness_seconds:
        return refuse(Reason.STALE)
    if fields.ticket_id in revoked:
        why = revoked[fields.ticket_id] if isinstance(revoked, Mapping) else Revocation.OTHER
        return Verdict(valid=False, reason=Reason.REVOKED, ticket=fields, presented_at=presented_at,
                       revocation=_revocation(why))
    if (fields.ticket_id, fields.device_public_key) in revoked_devices:
        return Verdict(valid=False, reason=Reason.REVOKED, ticket=fields, presented_at=presented_at,
                       revocation=Revocation.DEVICE_UNBOUND)
    if now < fields.valid_from:
        return refuse(Reason.NOT_YET_VALID)
    if now >= fields.valid_until:
        return refuse(Reason.EXPIRED)
    return Verdict(valid=True, reason=None, ticket=fields, presented_at=presented_at)


# --- trust list (issuer keys + revocation list served to inspector devices) ---------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issuer_jwk(key_id: int, public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The public JWK of an issuer key, with ``kid`` = decimal key id (WebCrypto imports it)."""
    if not isinstance(public_key.curve, ec.SECP256R1):
        raise ValueError("issuer key must be on P-256")
    numbers = public_key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
        "kid": str(key_id),
        "alg": "ES256",
        "use": "sig",
    }


def public_key_from_jwk(jwk: Mapping[str, str]) -> tuple[int, ec.EllipticCurvePublicKey]:
    """Inverse of ``issuer_jwk``: (key id, public key). Raises ValueError on a bad JWK."""
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError("not a P-256 JWK")
    key_id = int(jwk["kid"])
    if not 0 <= key_id <= MAX_KEY_ID:
        raise ValueError("kid out of range")
    x = _b64url_decode(jwk["x"])
    y = _b64url_decode(jwk["y"])
    if len(x) != 32 or len(y) != 32:
        raise ValueError("bad coordinates")
    key = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, b"\x04" + x + y)
    return key_id, key


def trust_list(
    issuer_keys: Mapping[int, ec.EllipticCurvePublicKey],
    revoked: Iterable[int] | Mapping[int, str],
    generated_at: datetime,
    revoked_devices: Iterable[tuple[int, bytes]] = (),
) -> dict[str, object]:
    """The JSON document inspector devices cache (see docs/ticket-record.md, "Trust list").

    ``revoked``: ticket ids, or ticket id -> Revocation value (the reason the verdict names);
    ``revoked_devices``: (ticket id, 33-byte device key) of phones unbound from a ticket (R-TKT-1).
    """
    if generated_at.tzinfo is None or generated_at.utcoffset() is None:
        raise ValueError("generated_at must be timezone-aware")
    reasons = {int(tid): _revocation(why).value for tid, why in revoked.items()} if isinstance(revoked, Mapping) else {}
    ids = sorted(set(reasons) if isinstance(revoked, Mapping) else {int(tid) for tid in revoked})
    devices = sorted({(int(tid), bytes(key)) for tid, key in revoked_devices})
    return {
        "format": "ekp-ticket-trust/1",
        "generated_at": int(generated_at.timestamp()),
        "freshness_seconds": DEFAULT_FRESHNESS_SECONDS,
        "issuer_keys": [issuer_jwk(kid, issuer_keys[kid]) for kid in sorted(issuer_keys)],
        "revoked": ids,
        "revocation_reasons": {str(tid): reasons[tid] for tid in ids if tid in reasons},
        "revoked_devices": [{"ticket_id": tid, "device_key": _b64url(key)} for tid, key in devices],
    }


@dataclass(frozen=True)
class TrustList:
    """A parsed trust list, ready for ``verify``:
    ``verify(code, t.issuer_keys, t.revoked, now, t.freshness_seconds, t.revoked_devices)``."""

    issuer_keys: dict[int, ec.EllipticCurvePublicKey]
    revoked: dict[int, Revocation]
    revoked_devices: frozenset[tuple[int, bytes]]
    generated_at: datetime
    freshness_seconds: int


def _ticket_id(item: object) -> int:
    if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= MAX_TICKET_ID:
        raise ValueError("revoked entries must be ticket ids")
    return item


def read_trust_list(document: Mapping[str, object]) -> TrustList:
    """Inverse of ``trust_list``. Raises ValueError on a document that is not one.

    ``revocation_reasons`` and ``revoked_devices`` may be missing (lists written before they existed);
    an unknown reason reads as ``other``.
    """
    if document.get("format") != "ekp-ticket-trust/1":
        raise ValueError("unknown trust list format")
    keys: dict[int, ec.EllipticCurvePublicKey] = {}
    raw_keys = document.get("issuer_keys")
    raw_revoked = document.get("revoked")
    generated = document.get("generated_at")
    raw_reasons = document.get("revocation_reasons", {})
    raw_devices = document.get("revoked_devices", [])
    freshness = document.get("freshness_seconds", DEFAULT_FRESHNESS_SECONDS)
    if not isinstance(raw_keys, list) or not isinstance(raw_revoked, list):
        raise ValueError("issuer_keys and revoked must be lists")
    if not isinstance(raw_reasons, dict) or not isinstance(raw_devices, list):
        raise ValueError("revocation_reasons must be an object and revoked_devices a list")
    if isinstance(generated, bool) or not isinstance(generated, int):
        raise ValueError("generated_at must be Unix seconds")
    if isinstance(freshness, bool) or not isinstance(freshness, int) or not 0 < freshness <= 3600:
        raise ValueError("freshness_seconds must be 1-3600")
    for jwk in raw_keys:
        key_id, key = public_key_from_jwk(jwk)
        keys[key_id] = key
    revoked = {_ticket_id(item): _revocation(raw_reasons.get(str(item))) for item in raw_revoked}
    devices: set[tuple[int, bytes]] = set()
    for entry in raw_devices:
        if not isinstance(entry, dict) or not isinstance(entry.get("device_key"), str):
            raise ValueError("revoked_devices entries are {ticket_id, device_key}")
        try:
            device_key = _b64url_decode(entry["device_key"])
        except (ValueError, TypeError) as exc:
            raise ValueError("device_key must be base64url") from exc
        if len(device_key) != DEVICE_KEY_BYTES or device_key[0] not in (2, 3):
            raise ValueError("device_key must be a 33-byte compressed point")
        devices.add((_ticket_id(entry.get("ticket_id")), device_key))
    return TrustList(issuer_keys=keys, revoked=revoked, revoked_devices=frozenset(devices),
                     generated_at=datetime.fromtimestamp(generated, UTC), freshness_seconds=freshness)


def parse_trust_list(
    document: Mapping[str, object],
) -> tuple[dict[int, ec.EllipticCurvePublicKey], frozenset[int], datetime]:
    """(issuer keys, revoked ticket ids, generated at) of a trust list; see ``read_trust_list``."""
    parsed = read_trust_list(document)
    return parsed.issuer_keys, frozenset(parsed.revoked), parsed.generated_at
