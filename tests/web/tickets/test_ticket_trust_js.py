"""R-TKT-1 and R-TKT-4 offline: the inspector's JavaScript (static/js/ticket-record.js) reads the trust
list's revocation reasons and unbound phones exactly as the server's Python does."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain import ticket_record as tr

JS_MODULE = Path(__file__).resolve().parents[3] / "static" / "js" / "ticket-record.js"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
ISSUER = tr.generate_private_key()
FIELDS = tr.TicketFields(key_id=1, ticket_id=5, product_code="5P1-N", valid_from=datetime(2026, 3, 4, 23, 0, tzinfo=UTC),
                         valid_until=datetime(2026, 4, 4, 22, 0, tzinfo=UTC), holder_initials="JK", birth_year=1990,
                         device_public_key=b"")

JS_CHECK = """
import * as tr from "./ticket-record.mjs";
import { readFileSync } from "node:fs";
const v = JSON.parse(readFileSync("vectors.json", "utf8"));
const hex = (h) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));
const trust = await tr.loadTrustList(v.trust);
const verdicts = [];
for (const c of v.cases) {
  const r = await tr.verify(hex(c), trust.issuerKeys, trust.revoked, v.now, trust.freshnessSeconds, trust.revokedDevices);
  verdicts.push([r.code, r.revocation]);
}
console.log(JSON.stringify(verdicts));
"""


def _code(ticket_id: int, phone: object) -> bytes:
    fields = replace(FIELDS, ticket_id=ticket_id, device_public_key=tr.compressed_device_key(phone.public_key()))  # type: ignore[attr-defined]
    return tr.sign_presentation(phone, tr.sign_static(ISSUER, fields), int(NOW.timestamp()))  # type: ignore[arg-type]


def test_r_tkt_1_and_4_javascript_reads_unbound_phones_and_reasons_like_python(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed; the browser tests cover the JS module")
    unbound, kept = tr.generate_private_key(), tr.generate_private_key()
    document = json.loads(json.dumps(tr.trust_list(
        {1: ISSUER.public_key()}, {5: "refunded", 6: "card_blocked", 9: "no-such-reason"}, NOW,
        revoked_devices=[(7, tr.compressed_device_key(unbound.public_key()))])))
    cases = [_code(5, kept), _code(6, kept), _code(9, kept), _code(7, unbound), _code(7, kept), _code(8, unbound)]
    trust = tr.read_trust_list(document)
    expected = []
    for code in cases:
        verdict = tr.verify(code, trust.issuer_keys, trust.revoked, NOW, trust.freshness_seconds, trust.revoked_devices)
        expected.append([verdict.code, verdict.revocation.value if verdict.revocation else None])
    assert expected == [["revoked", "refunded"], ["revoked", "card_blocked"], ["revoked", "other"],
                        ["revoked", "device_unbound"], ["valid", None], ["valid", None]]
    (tmp_path / "vectors.json").write_text(json.dumps({"trust": document, "now": int(NOW.timestamp()),
                                                       "cases": [code.hex() for code in cases]}))
    shutil.copy(JS_MODULE, tmp_path / "ticket-record.mjs")
    (tmp_path / "check.mjs").write_text(JS_CHECK)
    run = subprocess.run([node, "check.mjs"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == expected
