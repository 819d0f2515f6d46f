"""Aztec drawing time in the browser: what the phone does every 30 s on "Pokaż bilet do kontroli".

Serves static/ and the self-hosted zxing-wasm from a loopback HTTP server, opens Chromium and times,
over N rounds (median, p95, min, max in milliseconds):

* draw:            static/js/aztec.js drawAztec() of a real 195-byte presentation on a canvas
                   (zxing-wasm writer + painting the modules),
* sign + draw:     a full refresh: WebCrypto device signature (signPresentation) then the drawing,
* read + verify:   the inspector side: zxing-wasm reader on the drawn canvas, then verify() with
                   both signatures in WebCrypto (must say "valid").

The first call (loading and compiling the wasm) is reported separately. Server-side throughput of
signing and verifying records is in benchmarks/ticket_records.py (run it with --records here too).

Run: .venv/bin/python benchmarks/aztec_browser.py [--draws 200] [--records]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import statistics
import sys
import threading
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from playwright.sync_api import sync_playwright

from domain import ticket_record as tr
from domain.five_plus_one import month_end
from web.platform import clock

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("EKP_E2E_CHROMIUM", "/usr/bin/chromium")
PAGE = b"<!doctype html><meta charset=utf-8><title>aztec bench</title><canvas id=c style='width:320px'></canvas>"

BENCH_JS = """
async ({ presentation, staticRecord, draws, issuerJwk }) => {
  const { drawAztec } = await import("/static/js/aztec.js");
  const record = await import("/static/js/ticket-record.js");
  const { prepareZXingModule, readBarcodes } = await import("/static/vendor/zxing/es/reader/index.js");
  prepareZXingModule({ overrides: { locateFile: (p, pre) => p.endsWith(".wasm") ? "/static/vendor/zxing/reader/zxing_reader.wasm" : pre + p } });
  const canvas = document.getElementById("c");
  const bytes = Uint8Array.from(presentation);
  const stat = Uint8Array.from(staticRecord);
  let t = performance.now();
  const modules = await drawAztec(canvas, bytes);
  const firstDraw = performance.now() - t;
  const draw = [];
  for (let i = 0; i < draws; i += 1) {
    t = performance.now();
    await drawAztec(canvas, bytes);
    draw.push(performance.now() - t);
  }
  const device = await record.generateDeviceKey();
  const signDraw = [];
  for (let i = 0; i < draws; i += 1) {
    t = performance.now();
    const code = await record.signPresentation(device, stat, Math.floor(Date.now() / 1000));
    await drawAztec(canvas, code);
    signDraw.push(performance.now() - t);
  }
  await drawAztec(canvas, bytes); // the Python-signed code: its record names the Python device key
  const ctx = canvas.getContext("2d");
  t = performance.now();
  await readBarcodes(ctx.getImageData(0, 0, canvas.width, canvas.height), { formats: ["Aztec"] });
  const firstRead = performance.now() - t;
  const keys = new Map([[1, await record.importIssuerJwk(issuerJwk)]]);
  const readVerify = [];
  let last = null;
  for (let i = 0; i < draws; i += 1) {
    t = performance.now();
    const [hit] = await readBarcodes(ctx.getImageData(0, 0, canvas.width, canvas.height), { formats: ["Aztec"] });
    last = await record.verify(hit.bytes, keys, new Set(), Date.now() / 1000);
    readVerify.push(performance.now() - t);
  }
  return { modules, pixels: canvas.width, firstDraw, firstRead, draw, signDraw, readVerify, lastCode: last && last.code };
}
"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    def translate_path(self, path: str) -> str:
        path = path.split("?", 1)[0]
        if path.startswith("/static/vendor/zxing/"):
            return str(ROOT / "node_modules" / "zxing-wasm" / "dist" / path[len("/static/vendor/zxing/"):])
        if path.startswith("/static/"):
            return str(ROOT / "static" / path[len("/static/"):])
        return str(ROOT / "nonexistent")

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path in {"/", "/bench.html"}:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        return


def _presentation() -> tuple[bytes, bytes, dict[str, str]]:
    issuer, device = tr.generate_private_key(), tr.generate_private_key()
    # A 5+1 month that started two days ago, its dates from the domain's month rule, as Warsaw days.
    first_day = clock.today() - timedelta(days=2)
    last_day = month_end(first_day, 0)
    fields = tr.TicketFields(
        key_id=1, ticket_id=123456789, product_code="5P1-N",
        valid_from=datetime.combine(first_day, time.min, tzinfo=clock.WARSAW).astimezone(UTC),
        valid_until=datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=clock.WARSAW).astimezone(UTC),
        holder_initials="ŁŻ", birth_year=1990, device_public_key=tr.compressed_device_key(device.public_key()),
    )
    static = tr.sign_static(issuer, fields)
    return tr.sign_presentation(device, static, int(clock.now().timestamp())), static, tr.issuer_jwk(1, issuer.public_key())


def _row(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"{name:<16}{statistics.median(values):>10.2f}{p95:>10.2f}{ordered[0]:>10.2f}{ordered[-1]:>10.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200, help="rounds per measurement")
    parser.add_argument("--records", action="store_true", help="also run benchmarks/ticket_records.py")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set EKP_E2E_CHROMIUM)")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(ROOT)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    presentation, static, jwk = _presentation()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 360, "height": 800}, device_scale_factor=2)
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/bench.html")
            result = page.evaluate(BENCH_JS, {"presentation": list(presentation), "staticRecord": list(static),
                                              "draws": args.draws, "issuerJwk": jwk})
            version = browser.version
            browser.close()
    finally:
        server.shutdown()

    print(f"Chromium {version}; presentation {len(presentation)} bytes -> {result['modules']}x{result['modules']} "
          f"modules, canvas {result['pixels']} px; {args.draws} rounds")
    print(f"first draw (loads writer wasm): {result['firstDraw']:.1f} ms; first read (loads reader wasm): "
          f"{result['firstRead']:.1f} ms")
    print(f"{'ms':<16}{'median':>10}{'p95':>10}{'min':>10}{'max':>10}")
    print(_row("draw", result["draw"]))
    print(_row("sign + draw", result["signDraw"]))
    print(_row("read + verify", result["readVerify"]))
    assert result["lastCode"] == "valid", result["lastCode"]
    if args.records:
        from benchmarks import ticket_records

        sys.argv = [sys.argv[0]]
        ticket_records.main()


if __name__ == "__main__":
    main()
