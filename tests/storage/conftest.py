"""Fixtures for the storage tests: each behaviour runs against a local directory and S3 (moto).

The moto fixtures (``s3_server``, ``s3_env``, ``s3_bucket``) are defined in ``tests/s3server.py``
and registered for every package by ``tests/conftest.py``; ``fault_proxy`` comes from
``tests/faultproxy.py`` and is registered here by importing it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from faultproxy import fault_proxy

from robodm_engine.storage import MiB, StorageOptions, Store, open_store

__all__ = ["fault_proxy", "store", "store_factory"]

# Small enough to keep moto's memory and the suite's time low, large enough to exercise
# multipart (S3's minimum part is 5 MiB), several read blocks and several list pages.
SMALL_OPTIONS = {
    "multipart_threshold": 6 * MiB,
    "multipart_chunksize": 5 * MiB,
    "read_block_size": 64 * 1024,
    "read_cache_blocks": 2,
    "list_page_size": 3,
    "max_attempts": 10,
}

StoreFactory = Callable[..., Store]


@pytest.fixture(params=["local", "s3"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Build stores of the parametrized kind over one root: ``factory(**option_overrides)``.

    Local stores live under ``tmp_path``; S3 stores under a prefix of a fresh bucket on the
    moto server.
    """
    if request.param == "local":
        root: str = str(tmp_path / "store")
    else:
        root = f"s3://{request.getfixturevalue('s3_bucket')}/root/dir"

    def make(**options: object) -> Store:
        return open_store(root, StorageOptions.from_env(**{**SMALL_OPTIONS, **options}))

    return make


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    """A store of each kind with small multipart, block and page sizes."""
    return store_factory()
