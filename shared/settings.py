"""Settings read from the environment (prefix ``COLLECTORS_``; ``NATS_URL`` and ``MONGODB_URL`` too)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    def database_name(self, service: str) -> str:
        return f"{self.db_prefix}_{service}"


class ScraperSettings(Settings):
    concurrency: int = Field(default=4, ge=1, le=64, description="Concurrent jobs per worker")
    # Base URL of the local sandbox portals, replacing the host of `sandbox-*` manifests.
    sandbox_url: str | None = None
    job_timeout_s: float = 300.0
    # In-progress ack period: well below the consumer's ack wait.
    heartbeat_s: float = 10.0


class AccountsSettings(Settings):
    # "kid:base64key,kid2:base64key": the first is the one that encrypts.
    credential_keys: str | None = None
    credential_keys_file: Path | None = None


class SchedulerSettings(Settings):
    tick_s: float = 1.0
