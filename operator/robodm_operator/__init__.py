"""robodm_operator: a Kubernetes operator that runs IngestionJobs on dedicated RayClusters.

Modules, from pure to effectful:

* :mod:`~robodm_operator.conditions`: condition types, reasons, phases and their helpers;
* :mod:`robodm_engine.jobspec`: typed validation of an IngestionJob spec (shared with the engine);
* :mod:`~robodm_operator.render`: spec → RayCluster, ConfigMap and engine Job manifests;
* :mod:`~robodm_operator.progress`: the engine's progress file (contract and reader);
* :mod:`~robodm_operator.decide`: observed state → next status and actions;
* :mod:`~robodm_operator.kube`: the Kubernetes API calls;
* :mod:`~robodm_operator.handlers`: the kopf handlers;
* :mod:`~robodm_operator.config` and ``python -m robodm_operator``: settings and entry point.

Only :mod:`~robodm_operator.kube`, :mod:`~robodm_operator.handlers` and the entry point import
kopf or the Kubernetes client; everything above them is pure and tested without a server.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
