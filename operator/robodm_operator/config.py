"""Operator settings, read once from the environment by the entry point.

Nothing reads the environment at import time: :func:`OperatorConfig.from_env` is called by
``python -m robodm_operator`` (the Helm chart sets the variables), and tests build an
:class:`OperatorConfig` directly.

=============================  ======================================================  =========
Variable                       Meaning                                                 Default
=============================  ======================================================  =========
``ROBODM_WATCH_NAMESPACES``    comma-separated namespaces to watch; empty = all        (all)
``ROBODM_LOG_LEVEL``           DEBUG, INFO, WARNING or ERROR                           INFO
``ROBODM_ENGINE_IMAGE``        engine image for jobs without ``spec.image``            (none)
``ROBODM_POLL_INTERVAL``       seconds between status/progress polls of a running job  5
``ROBODM_HEALTH_PORT``         port of the ``/healthz`` liveness endpoint; 0 = off     8080
``ROBODM_KUBECONFIG``          kubeconfig file (outside a cluster)                     (auto)
=============================  ======================================================  =========
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(ValueError):
    """An environment variable has a value the operator cannot use."""


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    """How the operator runs: what it watches, how often it polls, which image it defaults to."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means cluster-wide."""
    log_level: str = "INFO"
    """Python logging level name."""
    engine_image: str | None = None
    """Image for IngestionJobs that do not set ``spec.image``."""
    poll_interval: float = 5.0
    """Seconds between two reconciliations of a running job (children status and progress)."""
    health_port: int = 8080
    """Port of kopf's liveness endpoint (``/healthz``); 0 disables it."""
    kubeconfig: str | None = None
    """Explicit kubeconfig path; ``None`` = in-cluster service account, then ``$KUBECONFIG``."""

    @property
    def clusterwide(self) -> bool:
        """Whether the operator watches every namespace."""
        return not self.namespaces

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OperatorConfig:
        """Build the settings from environment variables (see the module docstring)."""
        namespaces = tuple(
            ns.strip() for ns in env.get("ROBODM_WATCH_NAMESPACES", "").split(",") if ns.strip()
        )
        log_level = env.get("ROBODM_LOG_LEVEL", "INFO").strip().upper()
        if log_level not in LOG_LEVELS:
            raise ConfigError(
                f"ROBODM_LOG_LEVEL={log_level!r}: must be one of {', '.join(LOG_LEVELS)}"
            )
        try:
            poll_interval = float(env.get("ROBODM_POLL_INTERVAL", "5"))
            health_port = int(env.get("ROBODM_HEALTH_PORT", "8080"))
        except ValueError as error:
            raise ConfigError(
                f"ROBODM_POLL_INTERVAL/ROBODM_HEALTH_PORT must be numbers: {error}"
            ) from error
        if poll_interval <= 0:
            raise ConfigError(f"ROBODM_POLL_INTERVAL={poll_interval}: must be positive")
        if not 0 <= health_port <= 65535:
            raise ConfigError(f"ROBODM_HEALTH_PORT={health_port}: must be a port number or 0")
        return cls(
            namespaces=namespaces,
            log_level=log_level,
            engine_image=env.get("ROBODM_ENGINE_IMAGE") or None,
            poll_interval=poll_interval,
            health_port=health_port,
            kubeconfig=env.get("ROBODM_KUBECONFIG") or None,
        )
