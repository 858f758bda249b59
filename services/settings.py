"""Settings from the environment; every field is documented in the README table."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parent
# A wheel carries the top-level templates/ folder inside the package
# (pyproject.toml maps it to services/templates); a checkout, and an editable
# install of one, has only the top-level folder. So the package's own copy
# tells an installed copy from a checkout -- ROOT/templates cannot: ROOT is
# then site-packages, where another distribution may have left a templates/.
INSTALLED_TEMPLATES = PACKAGE_DIR / "templates"
INSTALLED = INSTALLED_TEMPLATES.is_dir()


def _home() -> Path:
    """Where the relative defaults (var/, config/demo.yaml) live: the checkout,
    or for an installed copy the working directory (never site-packages)."""
    return Path.cwd() if INSTALLED else ROOT


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TULPAR_", extra="ignore")

    # DATABASE_URL and REDIS_URL are the conventional unprefixed names.
    database_url: str = Field("", validation_alias="DATABASE_URL")
    redis_url: str = Field("", validation_alias="REDIS_URL")

    var_dir: Path = Field(default_factory=lambda: _home() / "var")
    templates_dir: Path = INSTALLED_TEMPLATES if INSTALLED else ROOT / "templates"
    config: Path = Field(default_factory=lambda: _home() / "config" / "demo.yaml")

    # Polling
    http_timeout: float = 10.0
    max_feed_bytes: int = 5 * 1024 * 1024
    user_agent: str = "tulpar/0.1 (+https://example.invalid/tulpar)"
    poll_interval: float = 60.0

    # Delivery
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    mail_from: str = "tulpar@localhost"
    webhook_secret: SecretStr = SecretStr("")
    # User-supplied URLs may point anywhere; loopback/private targets are refused
    # unless this is on (the demo and the tests turn it on for their loopback sinks).
    allow_private_targets: bool = False
    # Delays between attempts (the duration grammar, comma-separated), each
    # jittered by +-20%. The default spans about three days, like Stripe and
    # Svix: a receiver down for a weekend still gets its alerts. One attempt
    # more than there are delays, then the delivery is given up.
    retry_schedule: str = "5s,5m,30m,2h,5h,10h,10h,14h,14h,14h"
    # The sweeper puts due deliveries (retries, or ones a crash kept off the
    # queue) back on the queue; one enqueued this long ago without an outcome
    # is assumed lost (e.g. with a Redis restart) and enqueued again.
    sweep_interval: float = 5.0
    requeue_after: float = 120.0

    # Sources. Loopback/private feed addresses (and redirects to them) are
    # refused unless allow_private_targets is on, like webhooks; file://
    # sources only when this is on (tests and local demos).
    allow_file_sources: bool = False
    # A config file larger than this is refused before it is parsed.
    max_config_bytes: int = 16 * 1024 * 1024

    # The API (docs/api.md). The admin token creates tenants; empty: no one can.
    admin_token: SecretStr = SecretStr("")
    # Where the API is reached from outside: email confirmation links point here.
    public_url: str = "http://127.0.0.1:8000"
    # Requests per minute per API key (429 with Retry-After beyond it).
    api_rate_limit: int = 600
    # Stored articles (rule previews, currency alerts' news links) are kept this long.
    retention_days: int = 90
    # Whether workers match the config file's subscriptions besides the
    # tenants' in the database. Off: only the file's sources are used (`tulpar
    # run` applies the demo file to a demo tenant instead).
    config_subscriptions: bool = True

    @property
    def retry_delays(self) -> list[float]:
        """retry_schedule in seconds; ValueError naming the bad entry."""
        from services.durations import parse_duration

        parts = [p for p in self.retry_schedule.split(",") if p.strip()]
        if not parts:
            raise ValueError("TULPAR_RETRY_SCHEDULE is empty: give at least one delay, e.g. 5s,5m")
        return [parse_duration(p) for p in parts]

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays) + 1

    def secret_values(self) -> list[str]:
        """The values of the SecretStr settings: logging masks them wherever
        they appear. (A password inside a URL setting is not listed: redaction
        hides a URL's userinfo anyway, and a short one such as compose's
        `tulpar:tulpar` would blank that word in every line.)"""
        values = (getattr(self, name) for name in type(self).model_fields)
        return [v.get_secret_value() for v in values
                if isinstance(v, SecretStr) and v.get_secret_value()]

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'tulpar.db'}"

