"""The operator's back office in the browser (issue 17), at 360x800 and at desktop width: the demo admin signs in
with a TOTP code, adds a validator and uses its credential on the device API, sees each dashboard with its
charts drawn (each canvas's screenshot checked: not blank), previews and applies a card registry CSV."""

from __future__ import annotations

import io
import re
import uuid

import httpx
from PIL import Image, ImageChops
from playwright.sync_api import Page, expect

from e2e.conftest import PHONE
from e2e.test_purse_flow import log_in

# A desktop-width window (touch on: the shared log-in helper taps).
DESKTOP = {**PHONE, "viewport": {"width": 1280, "height": 900}, "device_scale_factor": 1, "is_mobile": False}
DASHBOARDS = {"5plus1": 4, "purse": 6, "inspections": 3, "health": 4}


def canvas_is_drawn(png: bytes) -> bool:
    """A chart's screenshot holds a drawing: more than a few hundred pixels that are not the background."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    background = Image.new("RGB", image.size, image.getpixel((0, 0)))
    histogram = ImageChops.difference(image, background).convert("L").histogram()
    return image.width * image.height - histogram[0] > 300


def check_dashboards(page: Page, width: int) -> None:
    for key, charts in DASHBOARDS.items():
        page.goto(f"/office/dashboards/{key}")
        expect(page.locator("canvas[data-drawn=true]")).to_have_count(charts)
        for canvas in page.locator("canvas[data-chart]").all():
            canvas.scroll_into_view_if_needed()
            assert canvas_is_drawn(canvas.screenshot()), f"{key}: {canvas.get_attribute('data-chart')} is blank"
        assert page.evaluate("document.documentElement.scrollWidth") <= width, key


def test_admin_adds_a_device_sees_every_dashboard_and_imports_the_registry(page: Page, demo_data, browser, axe) -> None:  # type: ignore[no-untyped-def]
    log_in(page, "admin@demo.ekp", demo_data)
    page.get_by_role("link", name="Biuro operatora").tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Biuro operatora")
    axe(page, "office home")

    page.goto("/office/devices")
    page.get_by_label("Rodzaj").select_option("validator")
    name = f"E2E BUS {uuid.uuid4().hex[:6]}"
    page.get_by_label("Nazwa (np. numer pojazdu albo ulica parkometru)").fill(name)
    page.get_by_role("button", name="Dodaj urządzenie").tap()
    credential = page.locator("#credential").inner_text().strip()
    assert re.fullmatch(r"\d+\.[\w-]+", credential), credential
    tap = httpx.post(f"{demo_data.url}/api/devices/validator/taps", headers={"Authorization": f"Bearer {credential}"},
                     json={"event_id": uuid.uuid4().hex, "at": demo_data.now().isoformat(), "card_number": "70019999",
                           "vehicle_id": "E2E-BUS", "stop_id": "E2E", "buttons": {"t": 0, "b": 0, "s": False}})
    assert tap.status_code == 200, tap.text
    axe(page, "office devices with a credential")

    check_dashboards(page, 360)
    axe(page, "office dashboard")

    registry = ("type,client_code,pesel,holder_name,resident_from,resident_until,blocked\n"
                f"KKM,{900000000 + uuid.uuid4().int % 99999999},44051401458,Anna Nowak,,,no\n")
    page.goto("/office/registry")
    page.get_by_label("Plik CSV").set_input_files({"name": "rejestr.csv", "mimeType": "text/csv",
                                                   "buffer": registry.encode()})
    page.get_by_role("button", name="Podgląd zmian").tap()
    preview = page.get_by_test_id("registry-preview")
    expect(preview.locator('[data-count="added"]')).to_have_text("1")
    page.get_by_label("Ten sam plik jeszcze raz (potwierdzenie)").set_input_files(
        {"name": "rejestr.csv", "mimeType": "text/csv", "buffer": registry.encode()})
    page.get_by_role("button", name="Zastosuj import").tap()
    expect(page.get_by_role("status")).to_contain_text("Zastosowano import: 1 dodanych")
    axe(page, "office registry history")

    desktop = browser.new_context(base_url=demo_data.url, **DESKTOP)
    try:
        wide = desktop.new_page()
        log_in(wide, "admin@demo.ekp", demo_data)
        check_dashboards(wide, 1280)
    finally:
        desktop.close()
