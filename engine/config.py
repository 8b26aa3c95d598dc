"""Configuration: one ``Settings`` object, read from ``NURTURE_*`` variables when asked.

Nothing here connects to anything; defaults make a laptop run need no service at all
(SQLite file, in-process queue, emails kept in the local outbox).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOG_FORMATS = ("text", "json")


def _default_dir(name: str) -> Path:
    """Prefer ./<name> (an operator's own content), else the shipped examples."""
    local = Path.cwd() / name
    return local if local.is_dir() else PROJECT_ROOT / name


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///nurture.sqlite3"
    redis_url: str | None = None
    smtp_url: str | None = None
    outbox_dir: Path = Path("var/outbox")
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    base_url: str = "http://127.0.0.1:8000"
    sequences_dir: Path = field(default_factory=lambda: _default_dir("sequences"))
    templates_dir: Path = field(default_factory=lambda: _default_dir("templates"))
    default_timezone: str = "UTC"
    tick_interval_seconds: float = 30.0
    tick_batch_size: int = 500
    mail_from: str = "Nurture <nurture@localhost>"
    postal_address: str = "Nurture Inc., 1 Example Street, Springfield"
    frequency_cap: int = 2
    frequency_window_days: int = 7
    send_rate_per_domain: float = 10.0
    log_level: str = "INFO"
    log_format: str = "text"
    metrics_token: str | None = None
    company_name: str = "Nurture"
    company_url: str | None = None
    send_batch_size: int = 50
    delivery_lease_seconds: float = 30.0
    requeue_after_seconds: float = 20.0
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    max_send_attempts: int = 8
    sales_inbox: str | None = None
    escalation_email: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_max_attempts: int = 10
    webhook_timeout_seconds: float = 10.0
    # The bot filter's timing rules (engine.core.bots.Thresholds; docs/tracking.md).
    bot_min_click_delay_seconds: float = 10.0  # a faster click after sending is a scanner's
    bot_burst_gap_seconds: float = 2.0  # clicks on several links this close: one burst
    bot_burst_links: int = 2  # links a burst needs to be a machine's
    bot_honeypot_window_seconds: float = 10.0  # clicks this near a honeypot hit: machine
    # How much one tick hands to the workers; the rest waits for the next tick.
    dispatch_limit: int = 20_000  # outbox rows enqueued per tick
    alert_dispatch_limit: int = 1_000  # handoffs whose alerts are planned per tick
    # Where bounces and replies come back (docs/inbound.md).
    bounce_address: str | None = None  # VERP base; default bounces@<the sender's domain>
    reply_address: str | None = None  # Reply-To base; unset: replies go to From
    inbound_max_bytes: int = 10 * 1024 * 1024  # larger inbound messages are refused
    inbound_imap_url: str | None = None  # imaps://user:pass@host/INBOX for `inbound imap`
    inbound_imap_done_folder: str = "Nurture-processed"  # recorded messages move here
    inbound_imap_poll_seconds: float = 60.0  # without IDLE; also IDLE's re-check period
    soft_bounce_limit: int = 3  # temporary failures within the window that suppress
    soft_bounce_window_days: int = 30
    ooo_max_hold_days: int = 30  # an out-of-office's return date holds sends at most this
    handoff_link_days: int = 14
    digest_hour: int = 7  # sales' daily digest goes out from this hour (UTC) on

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Build settings from ``NURTURE_*`` variables; unset ones keep their defaults."""
        env = dict(os.environ if environ is None else environ)
        base = cls()
        values: dict[str, object] = {}
        for name in cls.__dataclass_fields__:
            raw = env.get(f"NURTURE_{name.upper()}")
            if raw is None or raw == "":
                continue
            current = getattr(base, name)
            if isinstance(current, Path):
                values[name] = Path(raw)
            elif isinstance(current, bool):
                values[name] = raw.lower() in ("1", "true", "yes", "on")
            elif isinstance(current, int) and not isinstance(current, bool):
                values[name] = _number(name, raw, int)
            elif isinstance(current, float):
                values[name] = _number(name, raw, float)
            else:
                values[name] = raw
        if "log_format" in values:
            values["log_format"] = parse_log_format(str(values["log_format"]))
        if "company_url" in values:
            values["company_url"] = _web_address("company_url", str(values["company_url"]))
        if "secret_key" not in values:
            values["secret_key"] = _local_secret(Path(env.get("NURTURE_STATE_DIR") or "var"))
        return replace(base, **values)  # type: ignore[arg-type]

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def parse_log_format(raw: str | None) -> str:
    """``NURTURE_LOG_FORMAT``'s value, checked (unset or empty: ``text``)."""
    value = (raw or "text").strip().lower()
    if value not in LOG_FORMATS:
        raise ValueError(
            f"NURTURE_LOG_FORMAT={value!r} is not a log format; set one of {', '.join(LOG_FORMATS)}"
        )
    return value


def _local_secret(state_dir: Path) -> str:
    """A laptop install's secret, kept in ``var/secret_key`` so that unsubscribe and
    tracking links in emails already sent keep working after a restart. Production sets
    ``NURTURE_SECRET_KEY`` (the same on every host) instead."""
    path = state_dir / "secret_key"
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    state_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(secret, encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)
    return secret


def _web_address(name: str, raw: str) -> str:
    """An http(s) address with a host: every email links to it, so a typo here (or a
    ``javascript:`` URL) would break or endanger every email, not one."""
    parts = urlsplit(raw.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or " " in raw.strip():
        raise ValueError(
            f"NURTURE_{name.upper()}={raw!r} is not a web address: set it to your website, "
            "like https://www.example.com"
        )
    return raw.strip()


def _number(name: str, raw: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(
            f"NURTURE_{name.upper()}={raw!r} is not a {kind.__name__}; set a number"
        ) from None
