"""The operator profile as data (issue 15 item 7): validated at once, every problem listed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from domain.operator import (
    Modules,
    OperatorError,
    contrast_with_white,
    operator_from_dict,
)

DEMO = tomllib.loads((Path(__file__).resolve().parents[2] / "operators" / "demo.toml").read_text(encoding="utf-8"))


def test_the_demo_profile_turns_every_module_on():
    profile = operator_from_dict(DEMO)
    assert profile.modules == Modules(True, True, True, True)
    assert profile.short_name == "EKP" and profile.help_email and profile.controller and profile.complaints


def test_colours_must_carry_white_text():
    assert contrast_with_white("#0b4f8a") > 4.5 and contrast_with_white("#ffcc00") < 4.5
    with pytest.raises(OperatorError, match="too light"):
        operator_from_dict({**DEMO, "colours": {"primary": "#ffcc00", "primary_dark": "#083a66"}})


@pytest.mark.parametrize(("change", "problem"), [
    ({"logo": "../secret.svg"}, "logo"),
    ({"logo": "icons/icon.gif"}, "logo"),
    ({"short_name": "x" * 17}, "short_name"),
    ({"name": ""}, "name"),
    ({"colours": {"primary": "blue", "primary_dark": "#083a66"}}, "colours.primary"),
    ({"help": {**DEMO["help"], "email": "not-an-address"}}, "help.email"),
    ({"help": {**DEMO["help"], "desk_hours": []}}, "help.desk_hours"),
    ({"legal": {**DEMO["legal"], "data_protection_contact": ""}}, "legal.data_protection_contact"),
    ({"modules": {"purse": False, "parking": True}}, "modules.parking: needs modules.purse"),
    ({"modules": {"krakow_cards": "yes"}}, "modules.krakow_cards"),
    ({"modules": {"trams": True}}, "unknown module"),
    ({"modules": {}}, "at least one module"),
    ({"colour": "#000000"}, "colour: unknown key"),
])
def test_bad_profiles_are_refused_with_the_reason(change, problem):
    with pytest.raises(OperatorError) as caught:
        operator_from_dict({**DEMO, **change})
    assert any(problem in text for text in caught.value.problems), caught.value.problems


def test_every_problem_is_listed_at_once():
    with pytest.raises(OperatorError) as caught:
        operator_from_dict({"name": "", "short_name": "", "logo": "x", "modules": {}})
    assert len(caught.value.problems) >= 8
