"""The ``Examples:`` in the ingestion package's docstrings run and show what they claim."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import robodm_engine.ingestion as package

MODULES = sorted(
    f"{package.__name__}.{info.name}" for info in pkgutil.iter_modules(package.__path__)
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that touch the disk do so in a scratch directory
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_every_public_name_has_a_docstring_with_examples() -> None:
    missing = [
        name
        for name in package.__all__
        if isinstance(getattr(package, name), type) or callable(getattr(package, name))
        if "Examples:" not in (getattr(package, name).__doc__ or "")
    ]
    assert missing == []
