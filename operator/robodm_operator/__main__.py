"""Entry point: ``python -m robodm_operator`` runs the operator with settings from the environment.

See :mod:`robodm_operator.config` for the variables. The process runs until SIGTERM/SIGINT;
kopf then stops the handlers gracefully (Kubernetes' default grace period is enough).
"""

from __future__ import annotations

import logging
import os
import sys

import kopf

from robodm_operator.config import ConfigError, OperatorConfig
from robodm_operator.handlers import build_registry


def main() -> int:
    """Run the operator until it is stopped; return the process exit code."""
    try:
        config = OperatorConfig.from_env(os.environ)
    except ConfigError as error:
        print(f"robodm-operator: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    scope = "all namespaces" if config.clusterwide else ", ".join(config.namespaces)
    logging.getLogger("robodm_operator").info(
        "Watching %s; polling every %ss; default engine image %s",
        scope,
        config.poll_interval,
        config.engine_image or "(none: spec.image required)",
    )
    kopf.run(
        registry=build_registry(config),
        clusterwide=config.clusterwide,
        namespaces=config.namespaces,
        standalone=True,
        liveness_endpoint=(
            f"http://0.0.0.0:{config.health_port}/healthz" if config.health_port else None
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
