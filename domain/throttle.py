"""Throttling sign-in, password resets, registrations and card linking (R-AUTH-1).

Every attempt is counted first (atomically, by the store), then the costly check runs only when no
counter it touches is over its limit. The counters are chosen so an attacker is slowed without the
owner being locked out:

* `login.pair` — one account from one client address: the attacker's own address stops after 5 tries;
  the owner elsewhere is not affected.
* `login.account` and `login.ip` — one account from everywhere, one address for every account: they
  stop guessing spread over many addresses (or many accounts), but only for browsers the account has
  not signed in from. A browser that signed in to the account before (its known-device cookie, set at
  every successful sign-in and password reset) is counted by `login.device` instead, so the owner —
  staff included — still signs in during an attack, and people behind the same address (a NAT, a
  load balancer) who signed in before are not locked out with the attacker.
* Password resets: `reset.pair` and `reset.ip` answer "too many attempts"; `reset.account` only stops
  further mail (mail bombing) while the page still answers as if sent — the links already mailed stay
  valid, so the owner is never blocked from resetting.

Pure: the web layer does the counting and passes the counts in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    name: str
    attempts: int
    window_seconds: int


LIMITS: dict[str, Limit] = {limit.name: limit for limit in [
    Limit("login.pair", 5, 15 * 60),
    Limit("login.account", 10, 15 * 60),
    Limit("login.ip", 20, 15 * 60),
    Limit("login.device", 5, 15 * 60),
    Limit("login.code", 5, 15 * 60),  # second-factor codes per account (R-AUTH-3)
    Limit("register.ip", 10, 60 * 60),
    Limit("reset.pair", 3, 60 * 60),
    Limit("reset.ip", 10, 60 * 60),
    Limit("reset.account", 10, 60 * 60),
    Limit("resend.account", 3, 60 * 60),
    Limit("link_card.ip", 20, 60 * 60),
    Limit("link_card.account", 5, 60 * 60),
]}


def login_counters(email: str, ip: str, device: str | None) -> list[tuple[str, str]]:
    """The counters one sign-in attempt is counted in: (limit name, subject)."""
    counters = [("login.pair", f"{email}\n{ip}")]
    if device:
        counters.append(("login.device", f"{email}\n{device}"))
    else:
        counters += [("login.account", email), ("login.ip", ip)]
    return counters


def reset_counters(email: str, ip: str) -> list[tuple[str, str]]:
    """The counters that answer "too many attempts" to a reset request (`reset.account` only stops mail)."""
    return [("reset.pair", f"{email}\n{ip}"), ("reset.ip", ip)]


def wait_seconds(counted: Iterable[tuple[str, int, float]]) -> int:
    """Seconds to wait before trying again, given each counter's (name, count including this attempt,
    seconds left in its window); 0 when every counter is within its limit."""
    wait = 0
    for name, count, seconds_left in counted:
        if count > LIMITS[name].attempts:
            wait = max(wait, max(1, math.ceil(seconds_left)))
    return wait
