"""Settings read from the environment (prefix ``COLLECTORS_``; ``NATS_URL`` and ``MONGODB_URL`` too)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# A downloaded document larger than this is not collected (it ends as ``download_failed``); a
# collector's manifest may set its own limit, up to the ceiling: a document fetched by a page crosses
# the browser as a base64 string, and V8's strings stop at 512 MB.
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
MAX_DOCUMENT_BYTES_CEILING = 256 * 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COLLECTORS_", extra="ignore")

    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("COLLECTORS_NATS_URL", "NATS_URL"),
    )
    mongodb_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("COLLECTORS_MONGODB_URL", "MONGODB_URL"),
    )
    # Prefix of each service's own database: <prefix>_accounts, <prefix>_scheduler...
    db_prefix: str = "collectors"
    log_level: str = "INFO"
    log_json: bool = True
    # HTTP health endpoint of a standalone service (Kubernetes probes); 0 turns it off.
    health_port: int = 0
    # Default timeout of API requests made by the services and the CLI.
    request_timeout_s: float = 10.0
    data_dir: Path = Path("data")
    # Without MONGODB_URL: keep nothing, in memory (said loudly), instead of the durable embedded
    # store under data_dir. ``MONGODB_URL=memory://`` says the same.
    in_memory: bool = False

    def database_name(self, service: str) -> str:
        return f"{self.db_prefix}_{service}"


class StreamSettings(BaseSettings):
    """How JetStream keeps our streams, read where they are declared (every service declares them)."""

    model_config = SettingsConfigDict(env_prefix="COLLECTORS_", extra="ignore")
    # nats-servers holding each stream and the invoice bucket: 1 on one machine (`collectors up`,
    # compose), 3 on deploy/'s Kubernetes cluster, where a host's loss is survived by replication.
    stream_replicas: int = Field(default=1, ge=1, le=5)


class ScraperSettings(Settings):
    # A job waits on the portal most of its time, and one read over HTTP holds no browser context
    # (kit/session.py): 4 left the worker idle ~70 % of the time. A job with a page holds a renderer
    # (~25 MiB): 8 of them fit the worker's 1 GiB request (deploy/k8s/scraper.yaml).
    concurrency: int = Field(default=8, ge=1, le=64, description="Concurrent jobs per worker")
    # Base URL of the local sandbox portals, replacing the host of `sandbox-*` manifests.
    sandbox_url: str | None = None
    # A job starts without a browser context and opens one with its first page (kit/session.py).
    # False: every job opens its context first and reads over HTTP through it, as before (a portal
    # that only answers a real browser's network stack; the pipeline benchmark's baseline).
    browserless_start: bool = True
    job_timeout_s: float = 300.0
    # In-progress ack period: well below the consumer's ack wait.
    heartbeat_s: float = 10.0
    # How long a job stays ours without an ack or an in-progress ack before JetStream hands it to
    # another worker (a worker that died mid-job is noticed after this).
    ack_wait_s: float = 60.0
    # Deliveries of one job before it is kept aside as a dead letter instead of retried again.
    max_deliver: int = Field(default=10, ge=2)
    # Delay before a job whose run failed on our side (NATS, database, accounts API) comes back.
    retry_delay_s: float = 5.0
    # Default wait of each browser action (find an element, load a page) in a collection.
    page_timeout_s: float = 15.0
    # Largest document a collection downloads (a manifest's ``max_document_bytes`` overrides it).
    max_document_bytes: int = Field(default=MAX_DOCUMENT_BYTES, ge=1, le=MAX_DOCUMENT_BYTES_CEILING)
    # How often a worker checks that its browser and the Playwright driver still answer (a dead
    # driver shows no other sign while no job runs).
    browser_check_s: float = Field(default=5.0, gt=0)
    # This many browser or driver deaths (or failed starts) within the window and the worker exits
    # non-zero, for its supervisor to start a fresh one.
    browser_max_failures: int = Field(default=5, ge=1)
    browser_failure_window_s: float = Field(default=600.0, gt=0)
    # Evidence of failed runs (services/scraper/evidence.py): HAR size cap (bodies dropped past it),
    # retention in the collectors-evidence bucket, and successes sampled per collector
    # ("sandbox-classic=0.1,sandbox-spa=1": a tenth of classic's successful runs keep it too).
    evidence_max_bytes: int = Field(default=5 * 1024 * 1024, ge=64 * 1024)
    evidence_retention_days: float = Field(default=14.0, gt=0)
    evidence_sample: str = ""


class AccountsSettings(Settings):
    # "kid:base64key,kid2:base64key": the first is the one that encrypts.
    credential_keys: str | None = None
    credential_keys_file: Path | None = None


class SchedulerSettings(Settings):
    tick_s: float = 1.0
    # Overdue runs after downtime go out at this pace, not all at once.
    max_dispatch_per_tick: int = Field(default=100, ge=1)
    refresh_s: float = 60.0
    lease_ttl_s: float = 600.0
    # A dispatched job with no `collection started` after this is dispatched again (a job lost with
    # NATS, or taken by a worker that never ran it), without waiting for the session lease.
    start_timeout_s: float = Field(default=120.0, gt=0)
    # The scraper's limit on one collection (ScraperSettings.job_timeout_s: the same variable,
    # COLLECTORS_JOB_TIMEOUT_S). A run started longer ago than this plus the margin, without a result,
    # is closed as internal_error and retried.
    job_timeout_s: float = Field(default=300.0, gt=0)
    run_margin_s: float = Field(default=120.0, ge=0)
    probe_interval_s: float = 900.0
    incident_window_s: float = 1800.0
    incident_min_accounts: int = Field(default=3, ge=1)
    incident_share: float = Field(default=0.5, gt=0, le=1)


class NotifierSettings(Settings):
    """Delivery of notifications: SMTP, webhooks, retries and the period of the time-based rules."""

    # No host: email notifications are recorded as failed ("no SMTP server configured").
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    # "starttls" upgrades a plain connection (port 587), "tls" is implicit TLS (port 465).
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_sender: str = "Collecteurs <notifications@collectors.invalid>"
    smtp_validate_certs: bool = True
    # One delivery attempt on any channel (SMTP dialogue, webhook POST, in-app publish).
    delivery_timeout_s: float = Field(default=10.0, gt=0)
    # Quick retries within one round (tenacity, exponential backoff)...
    delivery_attempts: int = Field(default=3, ge=1, le=20)
    delivery_backoff_s: float = Field(default=1.0, ge=0)
    delivery_backoff_max_s: float = Field(default=30.0, ge=0)
    # ...then further rounds, later, before the failure is final and recorded as such.
    delivery_rounds: int = Field(default=8, ge=1, le=50)
    delivery_round_delay_s: float = Field(default=60.0, ge=0)
    delivery_round_delay_max_s: float = Field(default=3600.0, ge=0)
    # How often pending deliveries are looked for (a new notification wakes the loop at once).
    delivery_poll_s: float = Field(default=2.0, gt=0)
    delivery_concurrency: int = Field(default=32, ge=1, le=1000)
    # Period of the sweep behind the time-based rules (24 h transient failures, reminders).
    sweep_s: float = Field(default=60.0, gt=0)
    transient_alert_after_h: float = Field(default=24.0, gt=0)
    reminder_days: list[float] = Field(default_factory=lambda: [3.0, 7.0])
    # A pharmacy's webhook may only reach public addresses: private, loopback and link-local ones
    # (our own network) are refused unless this is on (local tests, a private deployment).
    webhook_allow_private_networks: bool = False


class WebSettings(Settings):
    """The web service (services/web): where it listens and whose tokens it trusts."""

    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)
    # Production: the identity provider's keys, by JWKS URL or one PEM public key. Neither: the
    # development key `collectors up` writes in the data dir (web-signing-key.pem), its public half.
    web_jwks_url: str | None = None
    web_jwt_public_key: str | None = None
    web_jwt_issuer: str = "collectors-dev"
    web_jwt_audience: str = "collectors-web"
    # Key of the CSRF cookie's HMAC. Every instance behind one address needs the same one; unset, each
    # process draws its own (one instance, development), and sessions must sign in again on restart.
    web_session_secret: SecretStr | None = None
    # Cookies marked Secure: on behind HTTPS (production); off for http://127.0.0.1 (development).
    web_secure_cookies: bool = False
    # Account activations and credential updates per tenant and minute (password guessing through
    # the platform, and a portal's lockout of the pharmacy's account, are what this slows down).
    web_activation_limit: int = Field(default=10, ge=1)
    web_keepalive_s: float = Field(default=15.0, gt=0)
    # Events waiting for one SSE client; a client this far behind is dropped, not waited for.
    web_client_queue: int = Field(default=256, ge=1)
