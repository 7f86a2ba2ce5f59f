"""A source root of each kind (local directory, S3 prefix on the moto server) to fill."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from robodm_engine.storage import StorageOptions, Store, open_store


@dataclass
class SourceRoot:
    uri: str
    store: Store

    def put(self, key: str, data: bytes) -> None:
        self.store.put_bytes(key, data)


@pytest.fixture(params=["local", "s3"])
def source_root(request: pytest.FixtureRequest, tmp_path: Path) -> SourceRoot:
    if request.param == "local":
        uri = str(tmp_path / "raw")
    else:
        uri = f"s3://{request.getfixturevalue('s3_bucket')}/raw"
    return SourceRoot(uri, open_store(uri, StorageOptions.from_env()))


@pytest.fixture
def local_root(tmp_path: Path) -> SourceRoot:
    uri = str(tmp_path / "raw")
    return SourceRoot(uri, open_store(uri))


Encoder = Callable[..., bytes]
