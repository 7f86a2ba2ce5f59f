"""The ``custom`` source: an ingester class by import path, with options."""

from __future__ import annotations

import pytest

from robodm_engine.sources import FileSource, load_ingester


def test_loads_and_constructs_with_options(tmp_path: object) -> None:
    source = load_ingester("robodm_engine.sources:FileSource",
                           {"uri": "/data", "include": ["*.npz"], "fps": 5})
    assert isinstance(source, FileSource)
    assert (source.uri, source.include, source.fps) == ("/data", ["*.npz"], 5.0)


@pytest.mark.parametrize(("path", "options", "pattern"), [
    ("no_colon", None, "not of the form"),
    ("robodm_engine.nope:X", None, "cannot import module 'robodm_engine.nope'"),
    ("robodm_engine.sources:Nope", None, "has no attribute 'Nope'"),
    ("robodm_engine.errors:RobodmError", None, "not a DataIngestionInterface subclass"),
    ("robodm_engine.sources:FileSource", {"bogus": 1}, r"cannot construct .*\['bogus'\]"),
])
def test_errors_say_what_is_wrong(path: str, options: dict[str, int] | None,
                                  pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        load_ingester(path, options)
