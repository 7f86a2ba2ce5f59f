"""Getting a Ray cluster for an ingestion: use the caller's, connect, or start a local one.

Kept apart from :mod:`robodm_engine.ingestion.runner` so the decision (which arguments
``ray.init`` gets) is a pure function, testable without starting Ray.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from robodm_engine.ingestion.config import IngestionConfig

__all__ = ["ensure_ray", "ray_init_kwargs"]

logger = logging.getLogger("robodm_engine.ingestion")

# ray.init arguments that size or configure a *local* cluster; refused when connecting.
_LOCAL_ONLY_INIT_KWARGS = frozenset(
    {
        "num_cpus",
        "num_gpus",
        "resources",
        "labels",
        "object_store_memory",
        "include_dashboard",
        "dashboard_host",
        "dashboard_port",
        "_temp_dir",
        "_system_config",
    }
)


def ray_init_kwargs(
    config: IngestionConfig, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Return the ``ray.init`` arguments the engine uses when it starts Ray itself.

    With ``RAY_ADDRESS`` in ``environ`` (default ``os.environ``) or ``address`` in
    ``config.ray_init_kwargs``, the engine connects to that cluster: the local-only
    arguments (``num_cpus``, ``object_store_memory``, ...) are dropped with a warning, since
    ``ray.init`` refuses them when connecting. Otherwise a local Ray gets
    ``num_cpus=min(num_workers, os.cpu_count())`` and no dashboard, unless
    ``ray_init_kwargs`` says otherwise.

    Examples:
        >>> from robodm_engine.ingestion import IngestionConfig
        >>> from robodm_engine.ingestion.cluster import ray_init_kwargs
        >>> config = IngestionConfig("./out", ray_init_kwargs={"num_cpus": 16})
        >>> ray_init_kwargs(config, environ={})
        {'num_cpus': 16, 'include_dashboard': False}
        >>> ray_init_kwargs(config, environ={"RAY_ADDRESS": "ray://head:10001"})
        {'address': 'ray://head:10001'}
    """
    environ = os.environ if environ is None else environ
    kwargs = dict(config.ray_init_kwargs)
    address = kwargs.pop("address", None) or environ.get("RAY_ADDRESS")
    if address and address != "local":
        ignored = sorted(k for k in kwargs if k in _LOCAL_ONLY_INIT_KWARGS)
        if ignored:
            logger.warning(
                "connecting to the Ray cluster at %s: ignoring local-only ray_init_kwargs %s",
                address, ignored,
            )
        return {
            "address": address,
            **{k: v for k, v in kwargs.items() if k not in _LOCAL_ONLY_INIT_KWARGS},
        }
    kwargs.setdefault("num_cpus", min(config.num_workers, os.cpu_count() or 1))
    kwargs.setdefault("include_dashboard", False)
    return kwargs


def ensure_ray(config: IngestionConfig) -> bool:
    """Make sure Ray is initialized for ``config``; return whether it was started here.

    An initialized Ray (the caller's) is used as is; otherwise Ray starts with
    :func:`ray_init_kwargs`. A Ray started here is left running so the returned dataset can
    use it; call ``ray.shutdown()`` to stop it.
    """
    import ray

    if ray.is_initialized():
        return False
    kwargs = ray_init_kwargs(config)
    logger.info("starting Ray: ray.init(%s)", ", ".join(f"{k}={v!r}" for k, v in kwargs.items()))
    ray.init(**kwargs)
    return True
