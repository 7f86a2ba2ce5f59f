"""Source detection: the right adapter per kind, and nothing called or consumed to decide."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from robodm_engine.errors import IngestionError
from robodm_engine.ingestion import (
    CallableAdapter,
    DataIngestionInterface,
    FileListAdapter,
    IteratorAdapter,
    PyTorchDatasetAdapter,
    detect_ingester,
)

from .conftest import CifarLike


class _Ingester(DataIngestionInterface):
    def get_data_items(self) -> list[int]:
        return [1]

    def transform_item(self, item: Any) -> dict[str, Any]:
        return {"x": item}


class _Stream(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    def __iter__(self) -> Any:
        return iter(range(3))

    def __len__(self) -> int:  # an IterableDataset with a length is still iterable-only
        return 3


def _gen_fn() -> Any:
    yield from range(3)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (CifarLike(4), PyTorchDatasetAdapter),
        ([{"x": 1}, {"x": 2}], PyTorchDatasetAdapter),
        (({"x": 1},), PyTorchDatasetAdapter),
        (np.zeros((5, 3)), PyTorchDatasetAdapter),
        (iter([1, 2]), IteratorAdapter),
        ((i for i in range(3)), IteratorAdapter),
        (_Stream(), IteratorAdapter),
        (_gen_fn, IteratorAdapter),
        (lambda: [1, 2], CallableAdapter),
        ({1, 2, 3}, IteratorAdapter),
        (torch.utils.data.DataLoader(CifarLike(4), batch_size=2), IteratorAdapter),
    ],
    ids=[
        "torch-dataset", "list", "tuple", "ndarray", "iterator", "generator", "iterable-dataset",
        "generator-function", "callable", "set", "dataloader",
    ],
)
def test_detects_each_kind(source: Any, expected: type) -> None:
    assert type(detect_ingester(source)) is expected


@pytest.mark.parametrize("paths", [["a.json", "b.json"], (Path("a.npz"), "b.npz")])
def test_a_list_of_paths_goes_to_the_file_list_adapter(paths: Any) -> None:
    adapter = detect_ingester(paths, transform_fn=lambda p: {"p": 0})
    assert type(adapter) is FileListAdapter
    assert list(adapter.iter_data_items()) == [os.path.abspath(p) for p in paths]


def test_a_custom_ingester_is_used_as_is() -> None:
    ingester = _Ingester()
    assert detect_ingester(ingester) is ingester


def test_detection_never_calls_the_callable_nor_reads_the_iterator() -> None:
    calls = []

    def source() -> list[int]:
        calls.append(1)
        return [1, 2]

    detect_ingester(source)
    assert calls == []
    iterator = iter([1, 2, 3])
    adapter = detect_ingester(iterator)
    assert next(iterator) == 1  # untouched by detection
    assert list(adapter.iter_data_items()) == [2, 3]


def test_a_one_shot_iterator_refuses_a_second_pass() -> None:
    adapter = detect_ingester(iter([1, 2]))
    assert list(adapter.iter_data_items()) == [1, 2]
    with pytest.raises(IngestionError, match="one-shot iterator"):
        adapter.iter_data_items()


def test_a_callable_adapter_calls_its_function_once() -> None:
    calls = itertools.count()

    def generate() -> list[int]:
        next(calls)
        return [1, 2, 3]

    adapter = CallableAdapter(data_generator=generate)
    assert list(adapter.iter_data_items()) == [1, 2, 3]
    assert adapter.count_items() == 3
    assert list(adapter.iter_data_items()) == [1, 2, 3]
    assert next(calls) == 1


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (42, "type builtins.int"),
        (object(), "type builtins.object"),
        ("data.json", "single path"),
        (Path("data.json"), "single path"),
        ({"a": [1, 2]}, "mapping"),
        (_Ingester, "class"),
        (lambda path: {"x": path}, "needs arguments"),
        (["a.json", "b.json"], "transform_fn"),
    ],
    ids=["int", "object", "str", "path", "dict", "class", "callable-with-args", "paths-no-fn"],
)
def test_unsupported_sources_raise_a_type_error_naming_them(source: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        detect_ingester(source)


def test_transform_fn_with_a_custom_ingester_is_refused() -> None:
    with pytest.raises(TypeError, match="transform_item"):
        detect_ingester(_Ingester(), transform_fn=lambda item: item)


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: PyTorchDatasetAdapter(CifarLike(2), transform_fn="nope"), TypeError),
        (lambda: PyTorchDatasetAdapter(CifarLike(2), group_size=0), ValueError),
        (lambda: PyTorchDatasetAdapter(iter([1])), TypeError),
        (lambda: IteratorAdapter(iterator_factory=iter([1])), TypeError),
        (lambda: IteratorAdapter(iterator_factory=_gen_fn, max_items=-1), ValueError),
        (lambda: FileListAdapter(file_paths="a.json", transform_fn=dict), TypeError),
        (lambda: FileListAdapter(file_paths=["a.json"], transform_fn=None), TypeError),
        (lambda: FileListAdapter(file_paths=["a.json", 3], transform_fn=dict), TypeError),
        (lambda: CallableAdapter(data_generator=[1, 2]), TypeError),
    ],
)
def test_adapters_validate_their_arguments(build: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        build()


def test_callable_returning_a_non_iterable_is_a_clear_error() -> None:
    adapter = CallableAdapter(data_generator=lambda: 3)
    with pytest.raises(TypeError, match="returned int"):
        adapter.iter_data_items()
