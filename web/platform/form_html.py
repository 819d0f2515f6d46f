"""The form fields of every page (`partials/forms.html` exports these as `field`, `errors_for` and
`form_errors`), written in Python: the same HTML, byte for byte, as the Jinja macros they replace
(tests/web/platform/test_form_html.py renders both), at a fraction of a macro call's cost. A page with four
fields spent a fifth of its time in Jinja's macro machinery."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape


def errors_for(name: Any, errors: Any) -> Markup:
    """The `#<name>-errors` block next to a field: its error messages, one paragraph each."""
    items = "".join(f'<p class="error">{escape(e)}</p>' for e in errors.get(name, []))
    return Markup(f'<div class="field-errors" id="{escape(name)}-errors" aria-live="polite">{items}</div>')


def field(name: Any, label: Any, errors: Any, value: Any = "", type: Any = "text", autocomplete: Any = None,
          hint: Any = None, required: Any = True, check: Any = False, inputmode: Any = None, extra: Any = "") -> Markup:
    """A labelled input with its hint and errors (optionally checked inline by htmx while typing)."""
    n = escape(name)
    has_errors = bool(errors.get(name))
    parts = [f'<div class="field{" has-error" if has_errors else ""}">\n  <label for="{n}">{escape(label)}</label>\n']
    if hint:
        parts.append(f'<p class="hint" id="{n}-hint">{escape(hint)}</p>')
    parts.append(f'  <input id="{n}" name="{n}" type="{escape(type)}"')
    if type != "password":
        parts.append(f' value="{escape(value)}"')
    if autocomplete:
        parts.append(f' autocomplete="{escape(autocomplete)}"')
    if inputmode:
        parts.append(f' inputmode="{escape(inputmode)}"')
    if required:
        parts.append(' required aria-required="true"')
    if has_errors:
        parts.append(' aria-invalid="true"')
    parts.append(f'    aria-describedby="{f"{n}-hint " if hint else ""}{n}-errors"')
    if check:
        parts.append(f' hx-post="/register/check?field={n}" hx-trigger="change, keyup changed delay:600ms"'
                     f' hx-target="#{n}-errors" hx-swap="outerHTML" hx-include="closest form"')
    parts.append(f"    {Markup(extra)}>\n  {errors_for(name, errors)}\n</div>")
    return Markup("".join(parts))


def form_errors(errors: Any, limit_message: Any = None) -> Markup:
    """The alert above a form: its form-wide errors and the throttling message, if any."""
    form = errors.get("form")
    if not (form or limit_message):
        return Markup("")
    parts = ['<div class="alert alert-error" role="alert">\n']
    for e in errors.get("form", []):
        parts.append(f"<p>{escape(e)}</p>")
    if limit_message:
        parts.append(f"<p>{escape(limit_message)}</p>")
    parts.append("</div>\n")
    return Markup("".join(parts))
