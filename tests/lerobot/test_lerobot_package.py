"""The public surface of robodm_engine.lerobot: exports, install hint, runnable docstrings."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("lerobot")

import robodm_engine.lerobot as package

MODULES = [
    "robodm_engine.lerobot",
    "robodm_engine.lerobot.converters",
    "robodm_engine.lerobot.dataset",
    "robodm_engine.lerobot.datamodule",
]
REPO_ROOT = Path(__file__).resolve().parents[2]


def test_all_lists_exactly_the_public_names() -> None:
    defined = {name for name in vars(package) if not name.startswith("_")}
    modules = {"converters", "dataset", "datamodule", "source", "export", "robodm_dataset",
               "annotations", "Any"}

    assert defined - modules == set()  # everything public loads lazily, through __all__
    for name in package.__all__:
        assert getattr(package, name).__module__.startswith("robodm_engine.lerobot"), name
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        package.Nope  # noqa: B018


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name: str) -> None:
    module = importlib.import_module(module_name)

    results = doctest.testmod(module, optionflags=doctest.ELLIPSIS)

    assert results.failed == 0


def test_import_without_the_extra_says_what_to_install() -> None:
    # A fresh interpreter in which importing lerobot fails, as it does when the optional
    # extra is not installed; the finder only affects that child process. (Blocking
    # lightning instead exercises the same loop, after a slow import of lerobot.)
    missing = "lerobot"
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys

        class Missing(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] == {missing!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, Missing())
        import robodm_engine.lerobot  # the package itself imports without the extra
        from robodm_engine.lerobot import LeRobotSource  # so does the import source
        from robodm_engine.lerobot import LeRobotDataModule
        """
    )

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ImportError: robodm_engine.lerobot needs")
    assert f"'{missing}" in last_line
    assert "pip install 'robodm-operator[lerobot]'" in last_line
