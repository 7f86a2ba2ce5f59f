"""The operator image holds no Ray and no torch: importing the operator must not need them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("ray", "torch", "lerobot", "lightning", "boto3.s3.transfer")


def test_the_operator_imports_without_heavy_engine_dependencies() -> None:
    code = (
        "import sys, robodm_operator.handlers, robodm_operator.__main__\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == "", f"the operator imported {done.stdout.strip()}"
