"""R-TKT-1 Two phones: the phone-change limit (pure), and the revocation of an unbound phone's record
in verification and in the trust list (R-TKT-4: the verdict names the reason)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from domain import ticket_phones as tp
from domain import ticket_record as tr

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def test_r_tkt_1_first_two_phones_are_free_then_two_changes_in_30_days() -> None:
    assert tp.MAX_PHONES == 2 and tp.PHONE_CHANGES == 2 and tp.PHONE_CHANGE_DAYS == 30
    assert tp.phone_changes([], NOW) == tp.PhoneChanges(used=0, limit=2, next_change_at=None)
    two = [NOW - 3 * DAY, NOW - 2 * DAY]
    assert tp.phone_changes(two, NOW).used == 0
    assert tp.new_phone_refusal(1, two, NOW) is None
    four = [*two, NOW - DAY, NOW - timedelta(hours=1)]
    changes = tp.phone_changes(four, NOW)
    assert (changes.used, changes.remaining, changes.allowed) == (2, 0, False)
    assert changes.next_change_at == NOW - DAY + tp.PHONE_CHANGE_PERIOD
    assert tp.new_phone_refusal(1, four, NOW) == "change_limit"
    assert tp.new_phone_refusal(2, four, NOW) == "device_limit"  # two phones hold it: unbind one first


def test_r_tkt_1_the_change_window_rolls() -> None:
    bindings = [NOW - 40 * DAY, NOW - 40 * DAY, NOW - 31 * DAY, NOW - 10 * DAY]
    assert tp.phone_changes(bindings, NOW).used == 1  # the change 31 days ago no longer counts
    boundary = [NOW, NOW, NOW, NOW + DAY]
    at = NOW + tp.PHONE_CHANGE_PERIOD
    assert tp.phone_changes(boundary, at - timedelta(seconds=1)).used == 2
    assert tp.phone_changes(boundary, at).used == 1
    assert tp.new_phone_refusal(0, boundary, at) is None


def test_r_tkt_1_unbound_phone_is_revoked_and_the_verdict_says_so() -> None:
    issuer, phone, other = tr.generate_private_key(), tr.generate_private_key(), tr.generate_private_key()
    fields = tr.TicketFields(key_id=1, ticket_id=42, product_code="5P1-N", valid_from=NOW - DAY,
                             valid_until=NOW + 20 * DAY, holder_initials="JK", birth_year=1990,
                             device_public_key=tr.compressed_device_key(phone.public_key()))
    code = tr.sign_presentation(phone, tr.sign_static(issuer, fields), int(NOW.timestamp()))
    keys = {1: issuer.public_key()}
    unbound = {(42, fields.device_public_key)}
    verdict = tr.verify(code, keys, {}, NOW, revoked_devices=unbound)
    assert (verdict.code, verdict.revocation) == ("revoked", tr.Revocation.DEVICE_UNBOUND)
    assert verdict.ticket is not None and verdict.ticket.ticket_id == 42
    assert tr.verify(code, keys, {}, NOW, revoked_devices={(42, tr.compressed_device_key(other.public_key()))}).valid
    assert tr.verify(code, keys, {}, NOW, revoked_devices={(43, fields.device_public_key)}).valid
    refunded = tr.verify(code, keys, {42: "refunded"}, NOW)
    assert (refunded.code, refunded.revocation) == ("revoked", tr.Revocation.REFUNDED)
    assert tr.verify(code, keys, {42}, NOW).revocation == tr.Revocation.OTHER
    # The trust list carries both, through JSON.
    document = json.loads(json.dumps(tr.trust_list(keys, {42: "chargeback", 7: "made-up"}, NOW, unbound)))
    assert document["revocation_reasons"] == {"7": "other", "42": "chargeback"}
    trust = tr.read_trust_list(document)
    assert trust.revoked == {42: tr.Revocation.CHARGEBACK, 7: tr.Revocation.OTHER}
    assert trust.revoked_devices == frozenset(unbound)
    assert tr.parse_trust_list(document)[1] == {7, 42}


def test_r_tkt_1_old_trust_lists_without_the_new_fields_still_read() -> None:
    document = {"format": "ekp-ticket-trust/1", "generated_at": 0, "issuer_keys": [], "revoked": [3]}
    trust = tr.read_trust_list(document)
    assert trust.revoked == {3: tr.Revocation.OTHER} and trust.revoked_devices == frozenset()


@pytest.mark.parametrize("extra", [
    {"revoked_devices": [{"ticket_id": 1, "device_key": "AA"}]},
    {"revoked_devices": [{"ticket_id": -1, "device_key": "A" * 44}]},
    {"revoked_devices": [[1, "x"]]},
    {"revoked_devices": {}},
    {"revocation_reasons": []},
    {"freshness_seconds": 0},
])
def test_r_tkt_1_bad_trust_list_entries_are_refused(extra: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        tr.read_trust_list({"format": "ekp-ticket-trust/1", "generated_at": 0, "issuer_keys": [], "revoked": [],
                            **extra})


# --- naming phones (issue 15 item 3) -----------------------------------------------------------------

ANDROID_CHROME = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/131.0.0.0 Mobile Safari/537.36")
IPHONE_SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/17.5 Mobile/15E148 Safari/604.1")


@pytest.mark.parametrize(("agent", "name"), [
    (ANDROID_CHROME, "Chrome · Android"),
    (IPHONE_SAFARI, "Safari · iPhone"),
    (ANDROID_CHROME.replace("Chrome/131", "SamsungBrowser/25.0 Chrome/131"), "Samsung Internet · Android"),
    ("Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", "Firefox · Android"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36 Edg/131.0", "Edge · Windows"),
    ("", ""), (None, ""), ("curl/8.0", ""),
])
def test_r_tkt_1_a_phone_is_named_by_its_browser_and_system(agent: str | None, name: str) -> None:
    assert tp.phone_name(agent) == name


def test_r_tkt_1_a_phone_name_is_bounded_and_has_no_control_characters() -> None:
    assert tp.clean_phone_name("  Telefon   Ani ") == "Telefon Ani"
    assert tp.clean_phone_name("x" * tp.PHONE_NAME_MAX) == "x" * tp.PHONE_NAME_MAX
    assert tp.clean_phone_name("x" * (tp.PHONE_NAME_MAX + 1)) is None
    assert tp.clean_phone_name("") is None and tp.clean_phone_name("   ") is None
    assert tp.clean_phone_name("Ania\u202egnp.exe") is None  # a bidi override
    assert tp.clean_phone_name("Ania\x00") is None
    assert tp.clean_phone_name("<script>alert(1)</script>") == "<script>alert(1)</script>"  # escaped when shown
