"""Settings read from `EKP_*` environment variables and validated at start-up.

Every bad value is reported with the variable's name and what is expected, all at once.
Secrets that are not given are generated into `var/` on first run and never committed.
"""

from __future__ import annotations

from functools import lru_cache

import hashlib
import ipaddress
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from domain.operator import OperatorError, OperatorProfile, operator_from_dict
from domain.purse_tariff import PurseTariff, purse_tariff_from_dict
from domain.tariff_5p1 import Tariff5p1, tariff_5p1_from_toml
from domain.trust import announces_test_money, sandbox_refusal
from domain.money import MoneyFormatError, parse_pln
from payments import GatewayAdapter, gateway_adapter, gateway_names
from web.platform import clock

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
DEMO_OPERATOR = PROJECT_ROOT / "operators" / "demo.toml"
TARIFF_DIR = PROJECT_ROOT / "tariffs"
DEFAULT_TARIFF_5P1 = TARIFF_DIR / "krakow-5plus1.toml"
DEFAULT_TARIFF_PURSE = TARIFF_DIR / "kolobrzeg-purse.toml"
BILLING_CRASH_VARIABLE = "EKP_TEST_BILLING_CRASH_AT"  # tests only: see web.five_plus_one.billing
BILLING_CRASH_POINTS = ("recorded", "answered")


@dataclass(frozen=True)
class Tariffs:
    """The operator's tariff files (TOML, versioned in `tariffs/`), read and validated once at start-up."""

    five_plus_one: Tariff5p1
    purse: PurseTariff


def read_tariffs(path_5p1: Path = DEFAULT_TARIFF_5P1, path_purse: Path = DEFAULT_TARIFF_PURSE) -> Tariffs:
    """Read both tariff files. Raises SettingsError naming the variable, the path and the reason."""
    problems: list[str] = []
    five_plus_one = _read_tariff("EKP_TARIFF_5P1", path_5p1, tariff_5p1_from_toml, problems)
    purse = _read_tariff("EKP_TARIFF_PURSE", path_purse, _purse_tariff_from_toml, problems)
    if problems or five_plus_one is None or purse is None:
        raise SettingsError(problems)
    return Tariffs(five_plus_one=five_plus_one, purse=purse)


def _purse_tariff_from_toml(text: str) -> PurseTariff:
    import tomllib

    return purse_tariff_from_dict(tomllib.loads(text))


def _read_tariff(name: str, path: Path, read: Any, problems: list[str]) -> Any:
    import tomllib

    try:
        return read(path.read_text(encoding="utf-8"))
    except OSError as exc:
        problems.append(f"{name}={str(path)!r}: the tariff file cannot be read ({exc.strerror or exc})")
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{name}={str(path)!r}: not a valid tariff file: not valid TOML ({_one_line(exc)})")
    except (ValueError, KeyError, TypeError) as exc:
        problems.append(f"{name}={str(path)!r}: not a valid tariff file: {_one_line(exc)}")
    return None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


class SettingsError(Exception):
    """One or more EKP_* variables have bad values."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    var_dir: Path = PROJECT_ROOT / "var"
    database_url: str = ""
    redis_url: str = ""
    smtp_url: str = ""
    mail_from: str = "EKP <no-reply@ekp.localhost>"
    payments: str = "sandbox"
    sandbox_in_production: bool = False  # EKP_ALLOW_SANDBOX_IN_PRODUCTION: the explicit opt-in (R-PAY-5)
    session_days_remember: int = 30
    session_hours: int = 12
    activation_hours: int = 3
    reset_hours: int = 1
    mail_retry_hours: int = 72  # EKP_MAIL_RETRY_HOURS: undelivered mail is retried this long, then marked failed
    password_min_length: int = 8
    default_language: str = "pl"
    dev_pages: bool = True
    scheduler: bool = True
    secure_cookies: bool = False
    trusted_proxies: tuple[str, ...] = ()  # EKP_TRUSTED_PROXIES: whose X-Forwarded-For names the client (R-AUTH-1)
    desk_topup_max: int = 100_000  # grosze: EKP_DESK_TOPUP_MAX (R-TOP-5)
    desk_topup_confirm_above: int = 20_000  # grosze: EKP_DESK_TOPUP_CONFIRM_ABOVE (R-TOP-5)
    log_format: str = "text"  # EKP_LOG_FORMAT: text or json (one JSON object a line)
    log_level: str = "INFO"  # EKP_LOG_LEVEL
    metrics_token: str = field(default="", repr=False)  # EKP_METRICS_TOKEN: bearer token for /metrics
    test_clock: datetime | None = None  # EKP_TEST_TODAY: the clock starts at this moment (never in production)
    secret_key: bytes = field(default=b"", repr=False)
    sandbox_key: bytes = field(default=b"", repr=False)  # the embedded sandbox's credentials derive from it
    pesel_key: bytes = field(default=b"", repr=False)
    # EKP_PHOTO_KEY: AES-256-GCM key of card-application photos and scans at rest (required in production;
    # elsewhere derived from EKP_SECRET_KEY). EKP_CARD_PHOTO_DAYS: days they are kept after the application closes.
    photo_key: bytes = field(default=b"", repr=False)
    card_photo_days: int = 30
    ticket_keys: tuple[tuple[int, int], ...] = field(default=(), repr=False)
    """EKP_TICKET_KEYS: (key id, P-256 private scalar), the first signs tickets, all verify (R-TKT-3);
    empty: keys generated into var/ (not in production)."""
    operator: OperatorProfile | None = None  # EKP_OPERATOR: the operator's profile and modules
    tariff_5p1_path: Path = DEFAULT_TARIFF_5P1  # EKP_TARIFF_5P1
    tariff_purse_path: Path = DEFAULT_TARIFF_PURSE  # EKP_TARIFF_PURSE
    tariffs: Tariffs | None = None  # both files, read at start-up (the shipped ones for Settings built by hand)
    charge_days_before: int = 3  # EKP_CHARGE_DAYS_BEFORE: a 5+1 month is charged this many days before it starts
    retry_every_days: int = 1  # EKP_RETRY_EVERY_DAYS: a failed charge is retried every this many days
    billing_concurrency: int = 8  # EKP_BILLING_CONCURRENCY: gateway calls in flight at once in a billing run
    sandbox_db: Path | None = None  # EKP_SANDBOX_DB: the embedded sandbox's store (default var/sandbox.db)
    sandbox_backoff: float = 5.0  # EKP_SANDBOX_BACKOFF: seconds before the sandbox's first notification retry
    # The chosen adapter's settings (`payments.GATEWAYS[payments].options`), each from EKP_<GATEWAY>_<OPTION>
    # (Tpay: EKP_TPAY_CLIENT_ID, _CLIENT_SECRET, _SECURITY_CODE required; _API_URL, _MERCHANT_ID, _ROOT_CERT,
    # _X5U_PREFIX optional). Only those set are kept; never printed (secrets).
    gateway_options: dict[str, str] = field(default_factory=dict, repr=False)
    metrics_multiprocess_dir: str = ""  # PROMETHEUS_MULTIPROC_DIR: set by `ekp run --workers N`
    billing_crash_at: str = ""  # EKP_TEST_BILLING_CRASH_AT: tests only, refused in production

    @property
    def tariff_5p1(self) -> Tariff5p1:
        return (self.tariffs or shipped_tariffs()).five_plus_one

    @property
    def purse_tariff(self) -> PurseTariff:
        return (self.tariffs or shipped_tariffs()).purse

    @property
    def profile(self) -> OperatorProfile:
        """The operator profile (the demo one for Settings built by hand)."""
        return self.operator or demo_operator()

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def announces_test_money(self) -> bool:
        """R-PAY-5: a production instance running the sandbox says so on every page."""
        return announces_test_money(self.env, self.payments)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def is_loopback_address(host: str) -> bool:
    """A client's address (an IP, as the server saw it) on this machine: 127.0.0.0/8 or ::1."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_loopback_host(host: str) -> bool:
    """EKP_HOST listens on this machine only (`localhost`, 127.0.0.0/8, ::1)."""
    return host.strip().lower() == "localhost" or is_loopback_address(host)


def start_warnings(settings: Settings) -> list[str]:
    """What to say loudly at start-up: development mode reachable from other machines."""
    if settings.is_production or is_loopback_host(settings.host):
        return []
    return [f"EKP_ENV={settings.env} listens on EKP_HOST={settings.host}, reachable from other machines: development "
            "mode is for one developer's computer (the payment sandbox, "
            + ("the development pages (/dev/mail, simulators; /dev/mail only to this machine), " if settings.dev_pages else "")
            + "generated keys). Use EKP_HOST=127.0.0.1, or EKP_ENV=production for a server."]


def _secret_from_var(var_dir: Path, name: str) -> bytes:
    """Read `var/<name>`; create it with 32 random bytes (hex) on first run."""
    path = var_dir / name
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    var_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_bytes(32)
    # Written whole under a temporary name, then linked into place: processes starting at once (workers)
    # never read a half-written file, and the first link wins.
    draft = var_dir / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(value.hex())
        os.link(draft, path)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    finally:
        draft.unlink(missing_ok=True)
    return value


def _bool(name: str, raw: str, problems: list[str]) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    problems.append(f"{name}={raw!r}: expected true or false")
    return False


def _int(name: str, raw: str, problems: list[str], low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{name}={raw!r}: expected a whole number from {low} to {high}")
        return low
    if not low <= value <= high:
        problems.append(f"{name}={raw!r}: expected a whole number from {low} to {high}")
    return value


def _gateway_options(adapter: GatewayAdapter, get: Any, problems: list[str]) -> dict[str, str]:
    """The adapter's settings from EKP_<GATEWAY>_<OPTION>: required ones present, URLs checked."""
    options: dict[str, str] = {}
    for option in adapter.options:
        variable = f"EKP_{adapter.name.upper()}_{option.name.upper()}"
        value = get(variable, "")
        if not value:
            if option.required:
                problems.append(f"{variable}: required when EKP_PAYMENTS={adapter.name}")
            continue
        if option.url:
            _url(variable, value, problems, {"http", "https"})
        options[option.name] = value
    return options


def _url(name: str, raw: str, problems: list[str], schemes: set[str]) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        problems.append(f"{name}={raw!r}: expected a URL starting with one of {', '.join(sorted(schemes))}://")
    return raw


def _key(name: str, raw: str, problems: list[str]) -> bytes:
    try:
        value = bytes.fromhex(raw)
    except ValueError:
        problems.append(f"{name}: expected at least 32 bytes written as hex (64 hex digits)")
        return b""
    if len(value) < 32:
        problems.append(f"{name}: expected at least 32 bytes written as hex (64 hex digits)")
    return value


TICKET_KEYS_FORMAT = ("expected <key id>:<64 hex digits>[,<key id>:<64 hex digits>...]: key ids 0-65535, "
                      "each a P-256 private key; the first signs, every one verifies (`ekp tickets new-key`)")
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _ticket_keys(raw: str, problems: list[str]) -> tuple[tuple[int, int], ...]:
    """Parse EKP_TICKET_KEYS; a problem never repeats the secret."""
    keys: list[tuple[int, int]] = []
    entries = [entry.strip() for entry in raw.split(",")]
    for number, entry in enumerate(entries, start=1):
        key_id, _, secret = entry.partition(":")
        key_id, secret = key_id.strip(), secret.strip()
        scalar = int(secret, 16) if len(secret) == 64 and all(c in "0123456789abcdefABCDEF" for c in secret) else 0
        if not key_id.isdigit() or not 0 <= int(key_id) <= 0xFFFF or not 0 < scalar < _P256_ORDER:
            problems.append(f"EKP_TICKET_KEYS: entry {number} is not valid; {TICKET_KEYS_FORMAT}")
            return ()
        if any(int(key_id) == known for known, _ in keys):
            problems.append(f"EKP_TICKET_KEYS: key id {int(key_id)} is given twice; {TICKET_KEYS_FORMAT}")
            return ()
        keys.append((int(key_id), scalar))
    return tuple(keys)
def _zloty(name: str, raw: str, problems: list[str], high: int) -> int:
    """An amount in złoty ("1000", "200,50") as grosze, above 0 and at most `high` grosze."""
    try:
        value = parse_pln(raw)
    except MoneyFormatError:
        value = -1
    if not 0 < value <= high:
        problems.append(f"{name}={raw!r}: expected an amount in złoty such as 1000 or 200,50 "
                        f"(above 0, at most {high // 100})")
        return 1
    return value


def _seconds(name: str, raw: str, problems: list[str]) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        problems.append(f"{name}={raw[:20]!r}: expected a number of seconds from 0 to 3600")
        return 5.0
    return value


def _trusted_proxies(raw: str, problems: list[str]) -> tuple[str, ...]:
    """EKP_TRUSTED_PROXIES: addresses or networks (comma-separated) of the proxies in front of the app."""
    import ipaddress

    proxies: list[str] = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        try:
            proxies.append(str(ipaddress.ip_network(entry, strict=False)) if "/" in entry else str(ipaddress.ip_address(entry)))
        except ValueError:
            problems.append(f"EKP_TRUSTED_PROXIES: {entry[:60]!r} is not an IP address or network "
                            "(expected e.g. 10.0.0.5,10.1.0.0/16)")
    return tuple(proxies)


def _mail_from(raw: str, problems: list[str]) -> str:
    from domain.accounts import sender_address

    try:
        sender_address(raw)
    except ValueError:
        problems.append(f"EKP_MAIL_FROM={raw!r}: expected one address, e.g. EKP <no-reply@example.pl>")
    return raw


def read_operator(path: Path) -> OperatorProfile:
    """Read and validate an operator profile file (TOML). Raises OSError or OperatorError."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise OperatorError([f"not valid TOML: {exc}"]) from exc
    profile = operator_from_dict(data)
    if not (PROJECT_ROOT / "static" / profile.logo).is_file():
        raise OperatorError([f"logo: static/{profile.logo} does not exist"])
    return profile


@lru_cache(maxsize=1)  # a cache of shipped files, read once per process: not state
def shipped_tariffs() -> Tariffs:
    """The tariff files shipped in `tariffs/` (for Settings built by hand, not from the environment)."""
    return read_tariffs()


@lru_cache(maxsize=1)  # a cache of a shipped file, read once per process: not state
def demo_operator() -> OperatorProfile:
    """The demo operator profile shipped in `operators/` (the default EKP_OPERATOR)."""
    return read_operator(DEMO_OPERATOR)


def _operator(raw: str, problems: list[str]) -> OperatorProfile | None:
    try:
        return read_operator(Path(raw))
    except OSError as exc:
        problems.append(f"EKP_OPERATOR={raw!r}: the operator profile cannot be read ({exc.strerror or exc})")
    except OperatorError as exc:
        problems.append(f"EKP_OPERATOR={raw!r}: " + "; ".join(exc.problems))
    return None


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build Settings from the environment; raise SettingsError listing every bad value."""
    env = dict(os.environ if environ is None else environ)
    problems: list[str] = []
    get = env.get

    mode = get("EKP_ENV", "development")
    if mode not in {"development", "production", "test"}:
        problems.append(f"EKP_ENV={mode!r}: expected development, production or test")

    var_dir = Path(get("EKP_VAR_DIR", str(PROJECT_ROOT / "var"))).resolve()
    port = _int("EKP_PORT", get("EKP_PORT", "8000"), problems, 1, 65535)
    host = get("EKP_HOST", "127.0.0.1")
    base_url = _url("EKP_BASE_URL", get("EKP_BASE_URL", f"http://{host}:{port}"), problems, {"http", "https"}).rstrip("/")

    database_url = get("EKP_DATABASE_URL", "")
    if database_url:
        if database_url.startswith("postgres://"):
            database_url = "postgresql://" + database_url[len("postgres://") :]
        if database_url.startswith("postgresql://"):
            database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]
        _url("EKP_DATABASE_URL", database_url, problems, {"sqlite", "postgresql+psycopg"})
    else:
        database_url = f"sqlite:///{var_dir / 'ekp.db'}"

    redis_url = get("EKP_REDIS_URL", "")
    if redis_url:
        _url("EKP_REDIS_URL", redis_url, problems, {"redis", "rediss", "unix"})
    smtp_url = get("EKP_SMTP_URL", "")
    if smtp_url:
        _url("EKP_SMTP_URL", smtp_url, problems, {"smtp", "smtps", "smtp+starttls"})

    payments = get("EKP_PAYMENTS", "sandbox")
    adapter = gateway_adapter(payments)
    if adapter is None:
        problems.append(f"EKP_PAYMENTS={payments!r}: expected {' or '.join(gateway_names())}")

    language = get("EKP_LANGUAGE", "pl")
    if language not in {"pl", "en"}:
        problems.append(f"EKP_LANGUAGE={language!r}: expected pl or en")

    production = mode == "production"
    sandbox_in_production = _bool("EKP_ALLOW_SANDBOX_IN_PRODUCTION", get("EKP_ALLOW_SANDBOX_IN_PRODUCTION", "false"),
                                  problems)
    if payments == "sandbox" and sandbox_refusal(mode, payments, sandbox_in_production):
        problems.append("EKP_PAYMENTS: production takes real payments only; set EKP_PAYMENTS=tpay with EKP_TPAY_* "
                        "(see docs/payments.md), or, to run the test-money sandbox anyway, "
                        "EKP_ALLOW_SANDBOX_IN_PRODUCTION=true (every page then says payments are not real)")
    test_clock = None
    if get(clock.PIN_VARIABLE):
        if production:
            problems.append(f"{clock.PIN_VARIABLE}: a test setting, refused when EKP_ENV=production")
        else:
            try:
                test_clock = clock.parse_pin(get(clock.PIN_VARIABLE, ""))
            except ValueError:
                problems.append(f"{clock.PIN_VARIABLE}={get(clock.PIN_VARIABLE)!r}: expected YYYY-MM-DD or "
                                "YYYY-MM-DDTHH:MM (Warsaw time)")
    dev_pages = _bool("EKP_DEV_PAGES", get("EKP_DEV_PAGES", "false" if production else "true"), problems)
    if production and dev_pages:
        problems.append("EKP_DEV_PAGES: refused when EKP_ENV=production (the development pages show every mail, "
                        "password reset links included); leave it unset or false")
    desk_max = _zloty("EKP_DESK_TOPUP_MAX", get("EKP_DESK_TOPUP_MAX", "1000"), problems, 10_000_000)
    desk_confirm = _zloty("EKP_DESK_TOPUP_CONFIRM_ABOVE", get("EKP_DESK_TOPUP_CONFIRM_ABOVE", "200"), problems,
                          10_000_000)
    if desk_confirm > desk_max:
        problems.append("EKP_DESK_TOPUP_CONFIRM_ABOVE: expected at most EKP_DESK_TOPUP_MAX")
    log_format = get("EKP_LOG_FORMAT", "text")
    if log_format not in {"text", "json"}:
        problems.append(f"EKP_LOG_FORMAT={log_format!r}: expected text or json")
    log_level = get("EKP_LOG_LEVEL", "INFO").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        problems.append(f"EKP_LOG_LEVEL={get('EKP_LOG_LEVEL')!r}: expected DEBUG, INFO, WARNING or ERROR")
    metrics_token = get("EKP_METRICS_TOKEN", "")
    if metrics_token and not re.fullmatch(r"[A-Za-z0-9._~+/=-]{24,200}", metrics_token):
        problems.append("EKP_METRICS_TOKEN: expected 24-200 letters, digits or ._~+/=- (e.g. `openssl rand -hex 32`)")
    settings_kwargs: dict[str, Any] = dict(
        env=mode,
        log_format=log_format,
        log_level=log_level,
        metrics_token=metrics_token,
        base_url=base_url,
        host=host,
        port=port,
        var_dir=var_dir,
        database_url=database_url,
        redis_url=redis_url,
        smtp_url=smtp_url,
        mail_from=_mail_from(get("EKP_MAIL_FROM", "EKP <no-reply@ekp.localhost>"), problems),
        payments=payments,
        sandbox_in_production=sandbox_in_production,
        session_days_remember=_int("EKP_SESSION_DAYS_REMEMBER", get("EKP_SESSION_DAYS_REMEMBER", "30"), problems, 1, 365),
        session_hours=_int("EKP_SESSION_HOURS", get("EKP_SESSION_HOURS", "12"), problems, 1, 24 * 14),
        activation_hours=_int("EKP_ACTIVATION_HOURS", get("EKP_ACTIVATION_HOURS", "3"), problems, 1, 72),
        reset_hours=_int("EKP_RESET_HOURS", get("EKP_RESET_HOURS", "1"), problems, 1, 24),
        mail_retry_hours=_int("EKP_MAIL_RETRY_HOURS", get("EKP_MAIL_RETRY_HOURS", "72"), problems, 1, 24 * 30),
        password_min_length=_int("EKP_PASSWORD_MIN_LENGTH", get("EKP_PASSWORD_MIN_LENGTH", "8"), problems, 8, 128),
        default_language=language,
        dev_pages=dev_pages,
        scheduler=_bool("EKP_SCHEDULER", get("EKP_SCHEDULER", "true"), problems),
        secure_cookies=_bool("EKP_SECURE_COOKIES", get("EKP_SECURE_COOKIES", "true" if base_url.startswith("https") else "false"), problems),
        trusted_proxies=_trusted_proxies(get("EKP_TRUSTED_PROXIES", ""), problems),
        desk_topup_max=desk_max,
        desk_topup_confirm_above=desk_confirm,
        test_clock=test_clock,
    )
    settings_kwargs["charge_days_before"] = _int("EKP_CHARGE_DAYS_BEFORE", get("EKP_CHARGE_DAYS_BEFORE", "3"),
                                                 problems, 1, 28)
    settings_kwargs["retry_every_days"] = _int("EKP_RETRY_EVERY_DAYS", get("EKP_RETRY_EVERY_DAYS", "1"), problems, 1, 14)
    settings_kwargs["billing_concurrency"] = _int("EKP_BILLING_CONCURRENCY", get("EKP_BILLING_CONCURRENCY", "8"),
                                                  problems, 1, 256)
    if get("EKP_SANDBOX_DB"):
        settings_kwargs["sandbox_db"] = Path(get("EKP_SANDBOX_DB", ""))
    settings_kwargs["sandbox_backoff"] = _seconds("EKP_SANDBOX_BACKOFF", get("EKP_SANDBOX_BACKOFF", "5"), problems)
    settings_kwargs["gateway_options"] = _gateway_options(adapter, get, problems) if adapter else {}
    settings_kwargs["metrics_multiprocess_dir"] = get("PROMETHEUS_MULTIPROC_DIR", "")
    crash_at = get(BILLING_CRASH_VARIABLE, "")
    if crash_at and (production or crash_at not in BILLING_CRASH_POINTS):
        problems.append(f"{BILLING_CRASH_VARIABLE}={crash_at[:20]!r}: a test setting ({' or '.join(BILLING_CRASH_POINTS)}), "
                        "refused when EKP_ENV=production")
    settings_kwargs["billing_crash_at"] = crash_at
    if production and not smtp_url:
        problems.append("EKP_SMTP_URL: required when EKP_ENV=production (mail would never leave the outbox)")
    ticket_keys = _ticket_keys(get("EKP_TICKET_KEYS", ""), problems) if get("EKP_TICKET_KEYS", "").strip() else ()
    if production and not get("EKP_TICKET_KEYS", "").strip():
        problems.append("EKP_TICKET_KEYS: required when EKP_ENV=production (every node must sign and verify tickets "
                        f"with the same keys); {TICKET_KEYS_FORMAT}")

    tariff_5p1_path = Path(get("EKP_TARIFF_5P1") or str(DEFAULT_TARIFF_5P1))
    tariff_purse_path = Path(get("EKP_TARIFF_PURSE") or str(DEFAULT_TARIFF_PURSE))
    tariff_5p1 = _read_tariff("EKP_TARIFF_5P1", tariff_5p1_path, tariff_5p1_from_toml, problems)
    purse_tariff = _read_tariff("EKP_TARIFF_PURSE", tariff_purse_path, _purse_tariff_from_toml, problems)
    settings_kwargs.update(tariff_5p1_path=tariff_5p1_path, tariff_purse_path=tariff_purse_path)
    operator = _operator(get("EKP_OPERATOR") or str(DEMO_OPERATOR), problems)

    secret_key = _key("EKP_SECRET_KEY", get("EKP_SECRET_KEY", ""), problems) if get("EKP_SECRET_KEY") else b""
    pesel_key = _key("EKP_PESEL_KEY", get("EKP_PESEL_KEY", ""), problems) if get("EKP_PESEL_KEY") else b""
    photo_key = _key("EKP_PHOTO_KEY", get("EKP_PHOTO_KEY", ""), problems)[:32] if get("EKP_PHOTO_KEY") else b""
    if production and not photo_key:
        problems.append("EKP_PHOTO_KEY: required when EKP_ENV=production (card photos and scans are encrypted with "
                        "it; 64 hex digits, e.g. `openssl rand -hex 32`)")
    settings_kwargs["card_photo_days"] = _int("EKP_CARD_PHOTO_DAYS", get("EKP_CARD_PHOTO_DAYS", "30"), problems, 1, 3650)
    if problems:
        raise SettingsError(problems)
    secret_key = secret_key or _secret_from_var(var_dir, "secret_key")
    pesel_key = pesel_key or _secret_from_var(var_dir, "pesel_key")
    sandbox_key = _secret_from_var(var_dir, "sandbox_key") if payments == "sandbox" else b""
    photo_key = photo_key or hashlib.sha256(b"ekp card photos\0" + secret_key).digest()  # not in production
    return Settings(secret_key=secret_key, pesel_key=pesel_key, sandbox_key=sandbox_key, ticket_keys=ticket_keys,
                    photo_key=photo_key, operator=operator, tariffs=Tariffs(five_plus_one=tariff_5p1, purse=purse_tariff),
                    **settings_kwargs)
