"""The form fields (web/platform/form_html.py, exported by partials/forms.html) render exactly what the Jinja macros
they replaced rendered: the macros' source is kept here as the reference."""

from __future__ import annotations

import functools
import itertools

import pytest
from markupsafe import Markup

from web.platform.templating import page_environment

REFERENCE_MACROS = """\
{% macro errors_for(name, errors) -%}
<div class="field-errors" id="{{ name }}-errors" aria-live="polite">
  {%- for e in errors.get(name, []) %}<p class="error">{{ e }}</p>{% endfor -%}
</div>
{%- endmacro %}

{% macro field(name, label, errors, value="", type="text", autocomplete=None, hint=None, required=True, check=False, inputmode=None, extra="") -%}
<div class="field{% if errors.get(name) %} has-error{% endif %}">
  <label for="{{ name }}">{{ label }}</label>
  {% if hint %}<p class="hint" id="{{ name }}-hint">{{ hint }}</p>{% endif %}
  <input id="{{ name }}" name="{{ name }}" type="{{ type }}"
    {%- if type != "password" %} value="{{ value }}"{% endif %}
    {%- if autocomplete %} autocomplete="{{ autocomplete }}"{% endif %}
    {%- if inputmode %} inputmode="{{ inputmode }}"{% endif %}
    {%- if required %} required aria-required="true"{% endif %}
    {%- if errors.get(name) %} aria-invalid="true"{% endif %}
    aria-describedby="{% if hint %}{{ name }}-hint {% endif %}{{ name }}-errors"
    {%- if check %} hx-post="/register/check?field={{ name }}" hx-trigger="change, keyup changed delay:600ms" hx-target="#{{ name }}-errors" hx-swap="outerHTML" hx-include="closest form"{% endif %}
    {{ extra | safe }}>
  {{ errors_for(name, errors) }}
</div>
{%- endmacro %}

{% macro form_errors(errors, limit_message=None) -%}
{% if errors.get("form") or limit_message %}
<div class="alert alert-error" role="alert">
  {% for e in errors.get("form", []) %}<p>{{ e }}</p>{% endfor %}
  {% if limit_message %}<p>{{ limit_message }}</p>{% endif %}
</div>
{% endif %}
{%- endmacro %}
"""
IMPORT = '{% from "partials/forms.html" import field, errors_for, form_errors %}'
CALLS = (
    "[{{ field(name, label, errors, value, type=type, autocomplete=autocomplete, hint=hint, required=required,"
    " check=check, inputmode=inputmode, extra=extra) }}]"
    "[{{ field(name, label, errors) }}][{{ field(name, label, errors, value, type=type) }}]"
    "[{{ errors_for(name, errors) }}][{{ form_errors(errors) }}][{{ form_errors(errors, limit) }}]"
)
ERRORS = [{}, {"email": ["Zły <adres> & \"coś\""]}, {"email": ["jeden", Markup("<b>dwa</b>")], "form": ["Całość <źle>"]},
          {"form": ["a", "b"]}, {"email": []}]


@functools.lru_cache(maxsize=1)
def _templates():  # type: ignore[no-untyped-def]
    env = page_environment("pl")
    return env.from_string(REFERENCE_MACROS + CALLS), env.from_string(IMPORT + CALLS)


def _renders(**context):  # type: ignore[no-untyped-def]
    reference, now = _templates()
    return reference.render(**context).lstrip("\n"), now.render(**context)  # lstrip: the lines between macros


@pytest.mark.parametrize("errors", ERRORS)
def test_fields_render_as_the_macros_did(errors):
    values = itertools.product(
        ["email", 'a"b<'],  # name
        ["text", "password", "email"],  # type
        [None, "", "username"],  # autocomplete
        [None, "", "Co najmniej <8> znaków", Markup("<i>8</i>")],  # hint
        [True, False],  # required
        [False, True],  # check
        [None, "numeric"],  # inputmode
        ["", 'data-x="1"'],  # extra
        [None, "Spróbuj za <5> minut"],  # limit
    )
    for name, type_, autocomplete, hint, required, check, inputmode, extra, limit in values:
        reference, now = _renders(name=name, label="Adres <e-mail>", errors=errors, value='x" onclick="y', type=type_,
                                  autocomplete=autocomplete, hint=hint, required=required, check=check,
                                  inputmode=inputmode, extra=extra, limit=limit)
        assert now == reference, (name, type_, autocomplete, hint, required, check, inputmode, extra, limit)


def test_undefined_values_render_as_the_macros_did():
    reference, now = _renders(name="pesel", label="PESEL", errors={})  # value, type, ... undefined
    assert now == reference
