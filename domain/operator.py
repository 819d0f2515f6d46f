"""The operator profile: one deployment serves one operator (its name, colours, logo, help contacts, legal
texts) and the modules it runs. Read from a file at start-up by the web layer (`EKP_OPERATOR`), validated
here as plain data; every problem is reported at once (`OperatorError`).

Modules (each on or off):

- `krakow_cards` — Kraków city cards (*Moje karty*: Karta Krakowska status), the 5+1 ticket and its mobile
  tickets, the inspectors' checks of them;
- `purse` — the Kołobrzeg-style e-purse card (*Portmonetka*), bus validators, desk top-ups;
- `parking` — parking meters paying from the e-purse (needs `purse`);
- `card_applications` — applying for a new e-purse card (needs `purse`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MODULES = ("krakow_cards", "purse", "parking", "card_applications")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_LOGO = re.compile(r"^[a-z0-9][a-z0-9_\-/]{0,80}\.(svg|png)$")
_EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")
_PHONE = re.compile(r"^\+?[0-9 ()-]{5,24}$")
MIN_CONTRAST = 4.5  # WCAG 2.1 AA for normal text: white text on the operator's colours


class OperatorError(ValueError):
    """An operator profile that cannot be used; `problems` lists every issue."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid operator profile: " + "; ".join(self.problems))


@dataclass(frozen=True)
class Modules:
    krakow_cards: bool = True
    purse: bool = True
    parking: bool = True
    card_applications: bool = True


@dataclass(frozen=True)
class OperatorProfile:
    name: str
    short_name: str
    primary_colour: str  # "#rrggbb": the header, buttons, links
    primary_dark_colour: str
    logo: str  # a file under static/ ("icons/icon.svg")
    help_phone: str
    help_email: str
    desk_hours: tuple[str, ...]  # one line a desk or day ("pon.–pt. 8:00–18:00, ul. …")
    controller: str  # the data controller (GDPR), with its address
    data_protection_contact: str  # the data protection officer's e-mail
    complaints: str  # how to complain (where, how long the answer takes)
    complaints_email: str
    modules: Modules = Modules()


def relative_luminance(colour: str) -> float:
    """WCAG 2.1 relative luminance of `#rrggbb`."""
    channels = []
    for i in (1, 3, 5):
        c = int(colour[i:i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = channels
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_with_white(colour: str) -> float:
    return 1.05 / (relative_luminance(colour) + 0.05)


def _text(data: Mapping[str, Any], key: str, where: str, problems: list[str], *, limit: int,
          pattern: re.Pattern[str] | None = None, expected: str = "") -> str:
    raw = data.get(key)
    if not isinstance(raw, str) or not raw.strip():
        problems.append(f"{where}{key}: required, a text")
        return ""
    value = raw.strip()
    if len(value) > limit or any(ord(ch) < 32 and ch not in "\n" for ch in value):
        problems.append(f"{where}{key}: at most {limit} characters, no control characters")
        return ""
    if pattern is not None and not pattern.match(value):
        problems.append(f"{where}{key}: {value[:60]!r} is not {expected}")
        return ""
    return value


def _table(data: Mapping[str, Any], key: str, problems: list[str]) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        problems.append(f"[{key}]: must be a table")
        return {}
    return value


def operator_from_dict(data: Mapping[str, Any]) -> OperatorProfile:
    """Build and validate a profile from plain data (e.g. parsed TOML)::

        name = "…"; short_name = "…"; logo = "icons/icon.svg"
        [colours]  primary = "#0b4f8a"; primary_dark = "#083a66"
        [help]     phone = "…"; email = "…"; desk_hours = ["…", …]
        [legal]    controller = "…"; data_protection_contact = "…"; complaints = "…"; complaints_email = "…"
        [modules]  krakow_cards = true; purse = true; parking = true; card_applications = true
    """
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise OperatorError(["the profile must be a table of keys"])
    known = {"name", "short_name", "logo", "colours", "help", "legal", "modules"}
    problems += [f"{key}: unknown key" for key in sorted(set(data) - known)]
    name = _text(data, "name", "", problems, limit=120)
    short_name = _text(data, "short_name", "", problems, limit=16)
    logo = _text(data, "logo", "", problems, limit=90, pattern=_LOGO,
                 expected="a .svg or .png file under static/ (e.g. icons/icon.svg)")
    if ".." in logo:
        problems.append("logo: may not leave static/")

    colours = _table(data, "colours", problems)
    primary = _text(colours, "primary", "colours.", problems, limit=7, pattern=_COLOUR, expected="a colour #rrggbb")
    dark = _text(colours, "primary_dark", "colours.", problems, limit=7, pattern=_COLOUR, expected="a colour #rrggbb")
    for key, colour in (("primary", primary), ("primary_dark", dark)):
        if colour and contrast_with_white(colour) < MIN_CONTRAST:
            problems.append(f"colours.{key}: {colour} is too light for white text "
                            f"(contrast {contrast_with_white(colour):.1f}:1, at least {MIN_CONTRAST}:1 needed)")

    help_ = _table(data, "help", problems)
    phone = _text(help_, "phone", "help.", problems, limit=24, pattern=_PHONE, expected="a telephone number")
    email = _text(help_, "email", "help.", problems, limit=254, pattern=_EMAIL, expected="an e-mail address")
    raw_hours = help_.get("desk_hours", [])
    hours: list[str] = []
    if not isinstance(raw_hours, list) or not 1 <= len(raw_hours) <= 12:
        problems.append("help.desk_hours: a list of 1 to 12 lines")
    else:
        for i, line in enumerate(raw_hours):
            if not isinstance(line, str) or not line.strip() or len(line) > 160:
                problems.append(f"help.desk_hours[{i}]: a text of at most 160 characters")
            else:
                hours.append(line.strip())

    legal = _table(data, "legal", problems)
    controller = _text(legal, "controller", "legal.", problems, limit=300)
    dpo = _text(legal, "data_protection_contact", "legal.", problems, limit=254, pattern=_EMAIL,
                expected="an e-mail address")
    complaints = _text(legal, "complaints", "legal.", problems, limit=1000)
    complaints_email = _text(legal, "complaints_email", "legal.", problems, limit=254, pattern=_EMAIL,
                             expected="an e-mail address")

    raw_modules = _table(data, "modules", problems)
    flags: dict[str, bool] = {}
    for key in sorted(set(raw_modules) - set(MODULES)):
        problems.append(f"modules.{key}: unknown module (known: {', '.join(MODULES)})")
    for key in MODULES:
        value = raw_modules.get(key, False)
        if not isinstance(value, bool):
            problems.append(f"modules.{key}: true or false")
            value = False
        flags[key] = value
    for needs_purse in ("parking", "card_applications"):
        if flags[needs_purse] and not flags["purse"]:
            problems.append(f"modules.{needs_purse}: needs modules.purse")
    if not any(flags.values()):
        problems.append("modules: turn at least one module on")

    if problems:
        raise OperatorError(problems)
    return OperatorProfile(name=name, short_name=short_name, primary_colour=primary.lower(),
                           primary_dark_colour=dark.lower(), logo=logo, help_phone=phone, help_email=email,
                           desk_hours=tuple(hours), controller=controller, data_protection_contact=dpo,
                           complaints=complaints, complaints_email=complaints_email, modules=Modules(**flags))
