"""The mobile-ticket barcode record (R-5P1-8; format in docs/ticket-record.md)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import ticket_record as tr
from domain.ticket_record import Reason

ISSUER = tr.generate_private_key()
OTHER_ISSUER = tr.generate_private_key()
DEVICE = tr.generate_private_key()
OTHER_DEVICE = tr.generate_private_key()
DEVICE_KEYS = [tr.generate_private_key() for _ in range(3)]
KEY_ID = 3
ISSUER_KEYS = {KEY_ID: ISSUER.public_key()}

VALID_FROM = datetime(2026, 3, 4, 23, 0, tzinfo=UTC)  # 5 March 00:00 Europe/Warsaw
VALID_UNTIL = datetime(2026, 4, 4, 22, 0, tzinfo=UTC)  # 5 April 00:00 Europe/Warsaw
NOW = datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())

FIELDS = tr.TicketFields(
    key_id=KEY_ID,
    ticket_id=1234567,
    product_code="5P1-N",
    valid_from=VALID_FROM,
    valid_until=VALID_UNTIL,
    holder_initials="ŁŻ",
    birth_year=1990,
    device_public_key=tr.compressed_device_key(DEVICE.public_key()),
)
STATIC = tr.sign_static(ISSUER, FIELDS)
PRESENTATION = tr.sign_presentation(DEVICE, STATIC, NOW_TS)


def check(data: bytes, now: datetime = NOW, revoked: frozenset[int] = frozenset()) -> tr.Verdict:
    return tr.verify(data, ISSUER_KEYS, revoked, now)


def presentation_at(ts: int, static: bytes = STATIC, device=DEVICE) -> bytes:
    return tr.sign_presentation(device, static, ts)


# --- strategies ----------------------------------------------------------------------------------

letters = st.characters(categories=["Lu", "Ll", "Lt", "Lm", "Lo"])
@st.composite
def ticket_fields(draw: st.DrawFn, max_start: int = tr.MAX_MINUTES - 1) -> tr.TicketFields:
    start = draw(st.integers(min_value=0, max_value=max_start))
    end = draw(st.integers(min_value=start + 1, max_value=tr.MAX_MINUTES))
    device = draw(st.sampled_from(DEVICE_KEYS))
    return tr.TicketFields(
        key_id=draw(st.integers(0, tr.MAX_KEY_ID)),
        ticket_id=draw(st.integers(0, tr.MAX_TICKET_ID)),
        product_code=draw(
            st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=16)
        ),
        valid_from=datetime.fromtimestamp(start * 60, UTC),
        valid_until=datetime.fromtimestamp(end * 60, UTC),
        holder_initials=draw(st.text(alphabet=letters, max_size=4)),
        birth_year=draw(st.none() | st.integers(tr.MIN_BIRTH_YEAR, tr.MAX_BIRTH_YEAR)),
        device_public_key=tr.compressed_device_key(device.public_key()),
    )


def device_for(fields: tr.TicketFields):
    """The private key behind the record's device public key."""
    key = fields.device_public_key
    return next(k for k in DEVICE_KEYS if tr.compressed_device_key(k.public_key()) == key)


# --- round trip and size -------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(fields=ticket_fields(), ts=st.integers(0, tr.MAX_TIMESTAMP))
def test_r_5p1_8_record_round_trips(fields: tr.TicketFields, ts: int) -> None:
    static = tr.sign_static(ISSUER, fields)
    assert tr.decode_static(static).fields == fields
    device = device_for(fields)
    presentation = tr.sign_presentation(device, static, ts)
    decoded = tr.decode(presentation)
    assert decoded.record.fields == fields
    assert decoded.record.raw == static
    assert decoded.timestamp == ts
    assert len(presentation) < tr.MAX_PRESENTATION_BYTES
    assert tr.encode_presentation(static, ts, decoded.device_signature) == presentation


@settings(max_examples=40, deadline=None)
@given(fields=ticket_fields(max_start=tr.MAX_TIMESTAMP // 60))  # u32 timestamps end in 2106
def test_r_5p1_8_signed_record_verifies_inside_its_validity(fields: tr.TicketFields) -> None:
    static = tr.sign_static(ISSUER, fields)
    device = device_for(fields)
    ts = int(fields.valid_from.timestamp())
    presentation = tr.sign_presentation(device, static, ts)
    verdict = tr.verify(presentation, {fields.key_id: ISSUER.public_key()}, set(), fields.valid_from)
    assert verdict.code == "valid"
    assert verdict.ticket == fields


def test_r_5p1_8_largest_presentation_is_well_under_400_bytes() -> None:
    widest = replace(FIELDS, product_code="X" * 16, holder_initials="\U0001d400" * 4)  # 4-byte letters
    static = tr.sign_static(ISSUER, widest)
    presentation = presentation_at(NOW_TS, static)
    assert len(static) == tr.MAX_STATIC_BYTES == 150
    assert len(presentation) == tr.MAX_STATIC_BYTES + tr.PRESENTATION_SUFFIX_BYTES == 218
    assert len(presentation) < 400
    assert len(PRESENTATION) == 195


def test_r_5p1_8_byte_layout_matches_the_documentation() -> None:
    data = PRESENTATION
    assert data[0] == 1
    assert int.from_bytes(data[1:3], "big") == KEY_ID
    assert int.from_bytes(data[3:9], "big") == 1234567
    assert int.from_bytes(data[9:13], "big") * 60 == int(VALID_FROM.timestamp())
    assert int.from_bytes(data[13:17], "big") * 60 == int(VALID_UNTIL.timestamp())
    assert int.from_bytes(data[17:19], "big") == 1990
    assert data[19:52] == FIELDS.device_public_key
    assert data[52] == 5 and data[53:58] == b"5P1-N"
    assert data[58] == 4 and data[59:63] == "ŁŻ".encode()
    assert int.from_bytes(data[127:131], "big") == NOW_TS
    assert len(data) == 131 + 64
    # Signatures checked independently of the module: raw r||s over the documented inputs.
    verify_raw(ISSUER.public_key(), data[63:127], b"EKP1I" + data[:63])
    verify_raw(DEVICE.public_key(), data[131:], b"EKP1D" + data[:131])
    assert tr.issuer_signature_input(data[:63]) == b"EKP1I" + data[:63]
    assert tr.device_signature_input(data[:127], NOW_TS) == b"EKP1D" + data[:131]


def verify_raw(key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes) -> None:
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))


# --- tampering -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_r_5p1_8_every_flipped_byte_is_refused(mask: int) -> None:
    assert check(PRESENTATION).valid
    for index in range(len(PRESENTATION)):
        tampered = bytearray(PRESENTATION)
        tampered[index] ^= mask
        verdict = check(bytes(tampered))
        assert not verdict.valid, index
        assert verdict.reason is not None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(0, len(PRESENTATION) - 1),
    mask=st.integers(1, 255),
    extra=st.binary(max_size=3),
    cut=st.integers(0, 3),
)
def test_r_5p1_8_tampered_presentation_is_never_valid(index: int, mask: int, extra: bytes, cut: int) -> None:
    tampered = bytearray(PRESENTATION)
    tampered[index] ^= mask
    assert not check(bytes(tampered)).valid
    resized = PRESENTATION[: len(PRESENTATION) - cut] + extra
    if len(resized) != len(PRESENTATION):
        assert check(resized).reason is Reason.MALFORMED
    elif resized != PRESENTATION:
        assert not check(resized).valid


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=300))
def test_r_5p1_8_random_bytes_are_never_valid(data: bytes) -> None:
    verdict = check(data)
    assert not verdict.valid
    assert verdict.ticket is None


# --- each verdict --------------------------------------------------------------------------------


def test_r_5p1_8_valid_presentation_shows_what_the_inspector_compares() -> None:
    verdict = check(PRESENTATION)
    assert verdict.valid and verdict.reason is None and verdict.code == "valid"
    assert verdict.ticket is not None
    assert verdict.ticket.holder_initials == "ŁŻ"
    assert verdict.ticket.birth_year == 1990
    assert verdict.ticket.product_code == "5P1-N"
    assert (verdict.ticket.valid_from, verdict.ticket.valid_until) == (VALID_FROM, VALID_UNTIL)
    assert verdict.presented_at == NOW


def test_r_5p1_8_malformed() -> None:
    assert check(b"").reason is Reason.MALFORMED
    assert check(PRESENTATION[:-1]).reason is Reason.MALFORMED
    assert check(PRESENTATION + b"\x00").reason is Reason.MALFORMED
    assert check(STATIC).reason is Reason.MALFORMED  # a static record alone is not a presentation
    assert check(PRESENTATION[:120]).reason is Reason.MALFORMED
    bad_product = bytearray(PRESENTATION)
    bad_product[53] = 0x20  # space is not allowed in a product code
    assert check(bytes(bad_product)).reason is Reason.MALFORMED
    bad_utf8 = bytearray(PRESENTATION)
    bad_utf8[59] = 0xFF
    assert check(bytes(bad_utf8)).reason is Reason.MALFORMED
    not_compressed = bytearray(PRESENTATION)
    not_compressed[19] = 0x04
    assert check(bytes(not_compressed)).reason is Reason.MALFORMED
    off_curve = bytearray(PRESENTATION)
    off_curve[20:52] = b"\xff" * 32  # x >= p
    assert check(bytes(off_curve)).reason is Reason.MALFORMED
    backwards = bytearray(PRESENTATION)
    backwards[9:13], backwards[13:17] = PRESENTATION[13:17], PRESENTATION[9:13]
    assert check(bytes(backwards)).reason is Reason.MALFORMED
    assert check(b"\x01" * 500).reason is Reason.MALFORMED
    with pytest.raises(tr.RecordError) as error:
        tr.decode(PRESENTATION[:-1])
    assert error.value.reason is Reason.MALFORMED


def test_r_5p1_8_unsupported_version() -> None:
    for version in (0, 2, 0xFF):
        assert check(bytes([version]) + PRESENTATION[1:]).reason is Reason.UNSUPPORTED_VERSION
    assert check(b"\x02").reason is Reason.UNSUPPORTED_VERSION


def test_r_5p1_8_unknown_key() -> None:
    verdict = tr.verify(PRESENTATION, {KEY_ID + 1: ISSUER.public_key()}, set(), NOW)
    assert verdict.reason is Reason.UNKNOWN_KEY
    assert verdict.ticket is None


def test_r_5p1_8_forged() -> None:
    forged_static = tr.sign_static(OTHER_ISSUER, FIELDS)  # right key id, wrong key
    verdict = check(presentation_at(NOW_TS, forged_static))
    assert verdict.reason is Reason.FORGED
    assert verdict.ticket is None
    # Someone else's device key in an otherwise genuine record breaks the issuer signature.
    swapped = bytearray(PRESENTATION)
    swapped[19:52] = tr.compressed_device_key(OTHER_DEVICE.public_key())
    assert check(bytes(swapped)).reason is Reason.FORGED
    for junk in (b"\xff" * 64, b"\x00" * 64):  # r, s out of range
        assert check(PRESENTATION[:63] + junk + PRESENTATION[127:]).reason is Reason.FORGED
        assert check(PRESENTATION[:131] + junk).reason is Reason.BAD_DEVICE_SIGNATURE


def test_r_5p1_8_bad_device_signature() -> None:
    copied = presentation_at(NOW_TS, device=OTHER_DEVICE)  # record copied to a phone without the key
    verdict = check(copied)
    assert verdict.reason is Reason.BAD_DEVICE_SIGNATURE
    assert verdict.ticket == FIELDS
    # Re-dating a screenshot breaks the device signature.
    redated = bytearray(PRESENTATION)
    redated[127:131] = (NOW_TS + 1).to_bytes(4, "big")
    assert check(bytes(redated)).reason is Reason.BAD_DEVICE_SIGNATURE


def test_r_5p1_8_stale_outside_the_freshness_window() -> None:
    window = tr.DEFAULT_FRESHNESS_SECONDS
    assert window == 90 and tr.REFRESH_SECONDS == 30
    assert check(presentation_at(NOW_TS - window)).valid
    assert check(presentation_at(NOW_TS + window)).valid
    assert check(presentation_at(NOW_TS - window - 1)).reason is Reason.STALE
    assert check(presentation_at(NOW_TS + window + 1)).reason is Reason.STALE
    assert check(PRESENTATION, now=NOW + timedelta(seconds=window, microseconds=999_999)).valid
    assert check(PRESENTATION, now=NOW + timedelta(seconds=window + 1)).reason is Reason.STALE
    tight = tr.verify(PRESENTATION, ISSUER_KEYS, set(), NOW + timedelta(seconds=31), freshness_seconds=30)
    assert tight.reason is Reason.STALE and tight.ticket == FIELDS


def test_r_5p1_8_revoked() -> None:
    verdict = check(PRESENTATION, revoked=frozenset({1234567}))
    assert verdict.reason is Reason.REVOKED
    assert verdict.ticket == FIELDS
    assert check(PRESENTATION, revoked=frozenset({7654321})).valid


def test_r_5p1_8_not_yet_valid_and_boundary() -> None:
    start = int(VALID_FROM.timestamp())
    early = VALID_FROM - timedelta(seconds=1)
    assert check(presentation_at(start - 1), now=early).reason is Reason.NOT_YET_VALID
    assert check(presentation_at(start), now=VALID_FROM).valid


def test_r_5p1_8_expired_and_boundary() -> None:
    end = int(VALID_UNTIL.timestamp())
    last = VALID_UNTIL - timedelta(microseconds=1)
    assert check(presentation_at(end - 1), now=last).valid
    verdict = check(presentation_at(end), now=VALID_UNTIL)
    assert verdict.reason is Reason.EXPIRED
    assert verdict.ticket == FIELDS


def test_r_5p1_8_checks_run_in_the_documented_order() -> None:
    # Stale beats revoked and expired; revoked beats expired.
    late = VALID_UNTIL + timedelta(days=1)
    assert check(PRESENTATION, now=late, revoked=frozenset({1234567})).reason is Reason.STALE
    ts = int(late.timestamp())
    assert check(presentation_at(ts), now=late, revoked=frozenset({1234567})).reason is Reason.REVOKED
    assert check(presentation_at(ts), now=late).reason is Reason.EXPIRED


def test_r_5p1_8_verdict_codes_are_the_documented_strings() -> None:
    assert {reason.value for reason in Reason} == {
        "expired", "not_yet_valid", "revoked", "forged", "bad_device_signature",
        "stale", "unknown_key", "malformed", "unsupported_version",
    }


# --- encoding refuses what does not fit ----------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"key_id": -1},
        {"key_id": 0x10000},
        {"ticket_id": 1 << 48},
        {"valid_from": datetime(2026, 3, 5, 0, 0)},  # naive
        {"valid_from": datetime(2026, 3, 5, 0, 0, 30, tzinfo=UTC)},
        {"valid_from": datetime(2026, 3, 5, 0, 0, tzinfo=timezone(timedelta(seconds=30)))},
        {"valid_until": VALID_FROM},
        {"product_code": ""},
        {"product_code": "5P1 N"},
        {"product_code": "5P1-Ż"},
        {"product_code": "X" * 17},
        {"holder_initials": "J1"},
        {"holder_initials": "ABCDE"},
        {"holder_initials": "J."},
        {"birth_year": 1899},
        {"birth_year": 2201},
        {"device_public_key": b"\x02" + b"\xff" * 32},  # x >= p: not a point
        {"device_public_key": DEVICE.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)},
    ],
)
def test_r_5p1_8_encode_refuses_fields_that_do_not_fit(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        tr.encode_static(replace(FIELDS, **change))


def test_r_5p1_8_bearer_ticket_has_no_initials_or_birth_year() -> None:
    bearer = replace(FIELDS, holder_initials="", birth_year=None)
    static = tr.sign_static(ISSUER, bearer)
    verdict = check(presentation_at(NOW_TS, static))
    assert verdict.valid
    assert verdict.ticket is not None
    assert verdict.ticket.holder_initials == "" and verdict.ticket.birth_year is None


def test_r_5p1_8_presentation_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        tr.encode_presentation(STATIC, NOW_TS, b"\x00" * 63)
    with pytest.raises(ValueError):
        tr.encode_presentation(STATIC, 1 << 32, b"\x00" * 64)
    with pytest.raises(TypeError):
        tr.encode_presentation(STATIC, 1.5, b"\x00" * 64)  # type: ignore[arg-type]
    with pytest.raises(tr.RecordError):
        tr.encode_presentation(STATIC[:-1], NOW_TS, b"\x00" * 64)
    with pytest.raises(ValueError):
        tr.verify(PRESENTATION, ISSUER_KEYS, set(), datetime(2026, 3, 10, 12, 0))


def test_r_5p1_8_device_key_from_webcrypto_raw_export() -> None:
    uncompressed = DEVICE.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert len(uncompressed) == 65
    compressed = tr.compressed_device_key(uncompressed)
    assert len(compressed) == 33 and compressed[0] in (2, 3)
    assert tr.compressed_device_key(compressed) == compressed
    assert compressed == FIELDS.device_public_key
    for bad in (b"", b"\x04" + b"\x00" * 64, b"\x02" + b"\xff" * 32, b"\x05" * 33):
        with pytest.raises(ValueError):
            tr.compressed_device_key(bad)


# --- trust list ----------------------------------------------------------------------------------


def test_r_5p1_8_trust_list_round_trips_through_json() -> None:
    keys = {KEY_ID: ISSUER.public_key(), 9: OTHER_ISSUER.public_key()}
    document = json.loads(json.dumps(tr.trust_list(keys, [5, 1234567, 5], NOW)))
    assert document["format"] == "ekp-ticket-trust/1"
    assert document["revoked"] == [5, 1234567]
    assert document["generated_at"] == NOW_TS
    assert [jwk["kid"] for jwk in document["issuer_keys"]] == ["3", "9"]
    assert all(jwk["kty"] == "EC" and jwk["crv"] == "P-256" for jwk in document["issuer_keys"])
    parsed_keys, revoked, generated_at = tr.parse_trust_list(document)
    assert generated_at == NOW
    assert revoked == {5, 1234567}
    assert tr.verify(PRESENTATION, parsed_keys, revoked, NOW).reason is Reason.REVOKED
    assert tr.verify(PRESENTATION, parsed_keys, set(), NOW).valid


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"format": "ekp-ticket-trust/1", "issuer_keys": {}, "revoked": [], "generated_at": 0},
        {"format": "ekp-ticket-trust/1", "issuer_keys": [], "revoked": ["1"], "generated_at": 0},
        {"format": "ekp-ticket-trust/1", "issuer_keys": [], "revoked": [], "generated_at": "now"},
        {"format": "ekp-ticket-trust/1", "issuer_keys": [{"kty": "OKP"}], "revoked": [], "generated_at": 0},
    ],
)
def test_r_5p1_8_trust_list_refuses_bad_documents(document: dict[str, object]) -> None:
    with pytest.raises((ValueError, KeyError)):
        tr.parse_trust_list(document)
