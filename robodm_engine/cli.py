"""The ``robodm-engine`` command: run, validate and inspect.

::

    robodm-engine run JOB.yaml        run an IngestionJob manifest (embedded Ray, or RAY_ADDRESS)
    robodm-engine validate JOB.yaml   print every problem of a spec, with its path
    robodm-engine inspect PATH|URI    summarize a trajectory file or a dataset manifest

Exit codes, so a Kubernetes Job (and a person) can tell failures apart:

====  ==========================================================================
0     success
2     invalid job spec or command line (nothing was written)
3     item failures beyond ``failurePolicy.maxFailedItems`` (data problem)
4     infrastructure failure: storage after retries, Ray, the file system
====  ==========================================================================
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from robodm_engine import __version__
from robodm_engine.errors import (
    DatasetError,
    IngestionError,
    SpecError,
    StorageError,
    TrajectoryError,
)

EXIT_OK = 0
EXIT_INVALID_SPEC = 2
EXIT_DATA_FAILURES = 3
EXIT_INFRASTRUCTURE = 4

logger = logging.getLogger("robodm_engine")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``robodm-engine``; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.handler(args))
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID_SPEC
    except IngestionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DATA_FAILURES
    except (StorageError, DatasetError, TrajectoryError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INFRASTRUCTURE
    except KeyboardInterrupt:
        print("interrupted; a re-run resumes where this one stopped", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robodm-engine",
        description="Ingest robot data into VLA trajectory datasets.",
        epilog="Exit codes: 0 ok, 2 invalid spec, 3 item failures over policy, "
               "4 infrastructure failure.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run an IngestionJob manifest")
    run.add_argument("job", help="path of the IngestionJob YAML")
    run.set_defaults(handler=_run)

    validate = commands.add_parser("validate", help="check an IngestionJob manifest")
    validate.add_argument("job", help="path of the IngestionJob YAML")
    validate.set_defaults(handler=_validate)

    inspect = commands.add_parser("inspect", help="summarize a trajectory or a dataset")
    inspect.add_argument("target", help="a .mkv file, a manifest.json, or a dataset root "
                                        "(local path or s3:// URI)")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of text")
    inspect.set_defaults(handler=_inspect)
    return parser


def _run(args: argparse.Namespace) -> int:
    from robodm_engine.job import load_job_document, run_job

    result = run_job(load_job_document(args.job))
    print(json.dumps(_result_summary(result), indent=2))
    return EXIT_OK


def _result_summary(result: Any) -> dict[str, Any]:
    return {
        "manifest": result.manifest_uri,
        "trajectories": len(result.records),
        "items_failed": len(result.failures),
        "counts": result.counts,
    }


def _validate(args: argparse.Namespace) -> int:
    from robodm_engine.job import load_job_document, parse_job

    spec = parse_job(load_job_document(args.job))
    print(f"{args.job}: valid ({spec.source.format} source {spec.source.uri} -> "
          f"{spec.output.uri}, {spec.num_workers} workers)")
    return EXIT_OK


def _inspect(args: argparse.Namespace) -> int:
    from robodm_engine.describe import describe

    summary = describe(args.target)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(_render(summary))
    return EXIT_OK


def _render(summary: dict[str, Any]) -> str:
    lines = [f"{summary['kind']}: {summary['uri']}"]
    for key, value in summary.items():
        if key in ("kind", "uri", "features"):
            continue
        lines.append(f"  {key}: {value}")
    lines.append("  features:")
    width = max((len(name) for name in summary["features"]), default=0)
    for name, feature in summary["features"].items():
        lines.append(f"    {name:<{width}}  {feature['dtype']}{list(feature['shape'])}"
                     f"  [{feature['encoding']}]")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
