"""Deployer settings (``BENTOMESH_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bentomesh_contracts.rollout import RolloutThresholds, Strategy
from services.deployer.analysis import MESH_THRESHOLDS


class DeployerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BENTOMESH_", extra="ignore")

    home: Path = Field(default=Path.home() / ".bentomesh")
    state_path: Path | None = Field(
        default=None, description="SQLite file of deployments; default $BENTOMESH_HOME/deployer.db"
    )
    ready_timeout_s: float = Field(default=120, description="Deadline for a new version's /readyz.")
    drain_s: float = Field(default=1.0, description="Grace before the replaced version stops.")
    deploy_concurrency: int = Field(
        default=2,
        ge=1,
        le=32,
        description="Models rolled out at once: one consumer each, up to the topic's partition "
        "count. A model's versions share a partition and roll out one at a time, in order.",
    )
    supervise_interval_s: float = Field(default=5.0, description="How often deaths are checked.")
    stop_deployments_on_exit: bool = Field(
        default=False,
        description="Stop model processes when the last deployer replica stops (bentomesh up).",
    )
    docker_host: str | None = Field(default=None, description="Docker engine URL.")
    public_host: str = Field(default="127.0.0.1", description="Host in endpoint URLs.")
    docker_network: str | None = Field(
        default=None,
        description="Attach model containers to this Docker network and address them by name "
        "(the deployer itself runs in a container on it, as in docker-compose); unset: publish "
        "each on a free port of public_host.",
    )

    image_prefix: str = Field(
        default="bentomesh",
        description="Only images the builder tagged <prefix>/<model> (and labelled with their "
        "bento) are run, by the id it recorded; never pulled.",
    )
    registry: str | None = Field(
        default=None,
        description="The mesh's image registry (host:port): an image not on this engine is "
        "pulled from it, by the digest the builder signed; from nowhere else.",
    )
    registry_username: str | None = Field(default=None, description="Registry user, if any.")
    registry_password: SecretStr | None = Field(default=None, description="Its password.")
    max_cpus: float = Field(default=4.0, gt=0, description="Largest CPU limit an event may ask.")
    max_memory_mb: int = Field(
        default=8192, ge=128, description="Largest memory limit (MiB) an event may ask."
    )
    max_replicas: int = Field(
        default=4, ge=1, le=16, description="Most replicas an event may ask (swarm runtime)."
    )

    max_body_bytes: int = Field(
        default=10 << 20, ge=1024, description="Largest request body the gateway forwards (413)."
    )

    rollout_strategy: Strategy = Field(
        default="replace",
        description="How a new version takes over when its registration does not say: "
        "'replace' (blue/green), 'canary' or 'shadow' (analysed steps, see docs/rollouts.md).",
    )
    rollout_canary_steps: list[float] = Field(
        default=[0.1, 0.5, 1.0], description="Canary traffic shares, step by step."
    )
    rollout_shadow_share: float = Field(
        default=1.0, gt=0, le=1, description="Share of requests a shadow candidate gets a copy of."
    )
    rollout_bake_s: float = Field(default=60.0, gt=0, description="Seconds each step lasts.")
    rollout_interval_s: float = Field(
        default=5.0, gt=0, description="How often a step is judged (an abort acts within one)."
    )
    rollout_max_wait_s: float = Field(
        default=600.0,
        ge=0,
        description="How long past its bake a step waits for enough requests before aborting.",
    )
    rollout_max_s: float = Field(
        default=3600.0,
        gt=0,
        description="Longest a rollout may take, every step's bake and wait included: a "
        "registration asking for more is refused (the consumer's poll interval covers this).",
    )
    rollout_thresholds: RolloutThresholds = Field(
        default=MESH_THRESHOLDS,
        description="Limits of every analysis (JSON), per registration "
        "overridable in deployment.rollout.thresholds.",
    )

    def db_path(self) -> Path:
        return self.state_path or self.home / "deployer.db"
