"""Issue 15: every page on two phones (360×800 and 412×915): a screenshot of each (test-results/phone/), no
horizontal overflow, no clipped text (an element whose content is wider than its box, other than a scroll
container meant to scroll, a form control or a visually hidden text) and no serious or critical axe violation.

One browser context per viewport and role; each role signs in once and its signed-in state is reused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from e2e.conftest import PHONE, PROJECT_ROOT
from e2e.helpers import assert_accessible, pass_second_step
from web.platform import clock as web_clock

pytestmark = pytest.mark.e2e

VIEWPORTS = {"360x800": {"width": 360, "height": 800}, "412x915": {"width": 412, "height": 915}}
SHOTS = PROJECT_ROOT / "test-results" / "phone"
ANONYMOUS = ["/", "/login", "/register", "/password/forgot", "/terms", "/privacy", "/help"]
PASSENGER = ["/account", "/cards", "/cards/add", "/5plus1", "/tickets", "/purse", "LOSS", "/account/two-factor"]
INSPECTOR = ["/inspect"]
STAFF = ["/desk", "/desk/purse/70010001"]

CLIPPED_JS = """
() => {
  const found = [];
  const skip = "input, select, textarea, svg, canvas, video, progress, img, iframe, script, style, .visually-hidden, .skip-link";
  for (const el of document.body.querySelectorAll("*")) {
    if (el.matches(skip) || el.closest(".visually-hidden, [hidden], .skip-link")) continue;
    const style = getComputedStyle(el);
    if (style.display === "inline" || style.display === "none" || el.offsetParent === null && style.position !== "fixed") continue;
    const scrolls = ["auto", "scroll"].includes(style.overflowX);
    if (scrolls && el.getAttribute("tabindex") === "0") continue;  // a scroll container meant to scroll (keyboard-reachable)
    if (el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0) {
      found.push(`${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${el.className && typeof el.className === "string" ? "." + el.className.trim().replace(/\\s+/g, ".") : ""} `
                 + `(${el.scrollWidth} > ${el.clientWidth}): ${(el.textContent || "").trim().slice(0, 60)}`);
    }
  }
  return found;
}
"""


def _context(browser, live_server, viewport: dict[str, int], state: dict | None = None) -> BrowserContext:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url, **{**PHONE, "viewport": viewport}, storage_state=state)
    if web_clock.is_pinned():
        context.clock.install(time=web_clock.now())
    context.set_default_timeout(15_000)
    return context


def _sign_in(page: Page, live_server, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/login")
    page.get_by_label("Adres e-mail").fill(email)
    page.get_by_label("Hasło", exact=True).fill("Demo1234")
    page.get_by_role("button", name="Zaloguj", exact=True).tap()
    pass_second_step(page, live_server, email)
    expect(page).not_to_have_url(re.compile(r"/login"))


def check_page(page: Page, path: str, size: str, errors: list[str]) -> None:
    response = page.goto(path)
    assert response is not None and response.status < 400, f"{path}: {response.status if response else 'no answer'}"
    page.wait_for_load_state("load")
    name = (path.strip("/").replace("/", "_") or "landing")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{size}-{name}.png"), full_page=True)
    width = page.viewport_size["width"] if page.viewport_size else 360
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{path} at {size} scrolls sideways: scrollWidth {scroll_width}"
    clipped = page.evaluate(CLIPPED_JS)
    assert not clipped, f"{path} at {size}: clipped content:\n" + "\n".join(clipped)
    assert_accessible(page, f"{path} at {size}")
    assert not errors, f"{path} at {size}: the browser reported errors:\n" + "\n".join(errors)


def _watch(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.on("console", lambda msg: errors.append(f"console.error: {msg.text}")
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    return errors


@pytest.fixture(scope="module")
def signed_in_states(browser, demo_data) -> Iterator[dict[str, dict]]:  # type: ignore[no-untyped-def]
    """Each role signs in once (staff and inspectors with their second step); the state serves every viewport."""
    states: dict[str, dict] = {}
    for role, email in (("passenger", "anna@demo.ekp"), ("inspector", "kontroler@demo.ekp"), ("staff", "bok@demo.ekp")):
        context = _context(browser, demo_data, VIEWPORTS["360x800"])
        page = context.new_page()
        _sign_in(page, demo_data, email)
        states[role] = context.storage_state()  # type: ignore[assignment]
        context.close()
    yield states


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_every_page_fits_the_phone_and_passes_axe(browser, demo_data, signed_in_states, size):  # type: ignore[no-untyped-def]
    viewport = VIEWPORTS[size]
    context = _context(browser, demo_data, viewport)
    try:
        page = context.new_page()
        errors = _watch(page)
        for path in ANONYMOUS:
            check_page(page, path, size, errors)
    finally:
        context.close()

    for role, paths in (("passenger", PASSENGER), ("inspector", INSPECTOR), ("staff", STAFF)):
        context = _context(browser, demo_data, viewport, signed_in_states[role])
        try:
            page = context.new_page()
            errors = _watch(page)
            for path in paths:
                if path == "LOSS":  # the loss report of the demo card, linked from the purse page
                    page.goto("/purse")
                    path = page.get_by_role("link", name=re.compile("Zgłoś utratę")).first.get_attribute("href") or ""
                check_page(page, path, size, errors)
        finally:
            context.close()


def test_screenshots_are_kept_out_of_git() -> None:
    assert "test-results/" in (PROJECT_ROOT / ".gitignore").read_text()
    assert Path(SHOTS).is_relative_to(PROJECT_ROOT / "test-results")
