"""The separate virtual environment robodm 0.1.0 runs in for the side-by-side benchmark.

robodm 0.1.0 encodes images as video only with PyAV < 14 (with PyAV >= 14 its codec probe
fails and it silently pickles every image), while this project needs PyAV 15, so robodm gets
its own environment, installed from ``requirements/bench-robodm010.txt`` (robodm 0.1.0,
PyAV 13.1.0 and what they pull in, pinned). The environment is reused while the file is
unchanged: a stamp inside it records the file's hash.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "requirements" / "bench-robodm010.txt"
DEFAULT_VENV = REPO / ".bench" / "robodm010-venv"
_STAMP = "bench-requirements.sha256"

log = logging.getLogger(__name__)


def _base_python() -> str:
    """The interpreter this venv was made from (robodm's venv must not nest in ours)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def ensure(venv: Path = DEFAULT_VENV) -> Path:
    """Create (or reuse) robodm 0.1.0's environment and return its ``python``.

    Uses ``uv`` when it sits beside this interpreter (seconds instead of a minute), else pip.

    Raises:
        subprocess.CalledProcessError: when creating the environment or installing fails
            (the half-made environment is removed).

    Examples:
        >>> python = ensure()  # doctest: +SKIP
        >>> subprocess.run([python, "-c", "import robodm"], check=True)  # doctest: +SKIP
    """
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    python = venv / "bin" / "python"
    stamp = venv / _STAMP
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    log.info("creating robodm 0.1.0's environment in %s", venv)
    shutil.rmtree(venv, ignore_errors=True)
    uv = Path(sys.executable).with_name("uv")
    try:
        if uv.exists():
            subprocess.run([str(uv), "venv", "-q", "--python", _base_python(), str(venv)],
                           check=True)
            install = [str(uv), "pip", "install", "-q", "--python", str(python)]
        else:
            subprocess.run([_base_python(), "-m", "venv", str(venv)], check=True)
            install = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*install, "-r", str(REQUIREMENTS)], check=True,
                       env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    except subprocess.CalledProcessError:
        shutil.rmtree(venv, ignore_errors=True)
        raise
    stamp.write_text(digest + "\n")
    return python
