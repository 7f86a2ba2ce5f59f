"""A PyTorch ``IterableDataset`` view of a trajectory dataset, sharded for DDP training.

Each epoch, the trajectories are dealt out (after an optional seeded shuffle, the same on every
process) to ``world_size x num_workers`` shards: DDP rank ``r``'s DataLoader worker ``w`` reads
shard ``r * num_workers + w``. The shards are disjoint and cover the dataset, so every step is
seen exactly once per epoch across the whole job. Trajectories are read in the DataLoader
worker itself (no Ray), streamed from S3 when remote.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch.utils.data import IterableDataset, get_worker_info

from robodm_engine.dataset._read import STEP_COLUMN, ReadOptions, _read_one
from robodm_engine.dataset._sources import TrajectorySource
from robodm_engine.errors import DatasetError, RobodmError


class TorchStepDataset(IterableDataset[dict[str, Any]]):
    """Steps of a trajectory dataset for a ``torch.utils.data.DataLoader``.

    Made by :meth:`VLADataset.to_torch`. Rows are dicts of feature → numpy value (the
    DataLoader's default collate stacks them into tensors; strings become lists), plus
    ``trajectory``, ``step`` and ``timestamp_ms``.

    Note:
        Ranks may get different numbers of steps when trajectories differ in length; with
        DDP, use ``Trainer(use_distributed_sampler=False)`` and a join-aware loop, or
        trajectories of equal length.

    Examples:
        >>> from torch.utils.data import DataLoader
        >>> steps = VLADataset("s3://datasets/teleop-v1/").to_torch(shuffle=True, seed=0)
        >>> loader = DataLoader(steps, batch_size=32, num_workers=2)  # doctest: +SKIP
        >>> for epoch in range(10):  # doctest: +SKIP
        ...     steps.set_epoch(epoch)
        ...     for batch in loader: ...
    """

    def __init__(
        self,
        sources: Sequence[TrajectorySource],
        options: ReadOptions,
        *,
        shuffle: bool = False,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if options.mode != "step":
            raise ValueError("to_torch() streams steps; open the dataset with mode='step'")
        self.sources = tuple(sources)
        self.options = replace(options, data_slice=None)
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` (call it on every rank, before iterating, like DDP samplers)."""
        self.epoch = epoch

    def shard(self) -> list[TrajectorySource]:
        """The trajectories this process (rank) and DataLoader worker read this epoch."""
        rank, world_size = self._distributed()
        worker = get_worker_info()
        worker_id, workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        order = list(range(len(self.sources)))
        if self.shuffle:
            random.Random(self.seed * 1_000_003 + self.epoch).shuffle(order)
        shards = world_size * workers
        return [self.sources[i] for i in order[rank * workers + worker_id :: shards]]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        shard = self.shard()
        rng = random.Random(f"{self.seed}:{self.epoch}:{len(shard)}")
        for source in shard:
            try:
                columns = _read_one(source, self.options)
            except RobodmError as exc:
                if self.options.on_error == "skip":
                    continue
                raise DatasetError(f"cannot read trajectory {source.uri}: {exc}") from exc
            count = len(columns[STEP_COLUMN])
            steps = list(range(count))
            if self.shuffle:
                rng.shuffle(steps)
            for step in steps:
                yield {name: values[step] for name, values in columns.items()}

    def _distributed(self) -> tuple[int, int]:
        if self.rank is not None and self.world_size is not None:
            rank, world_size = self.rank, self.world_size
        elif torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
        else:  # torchrun sets these before the process group exists
            rank = int(os.environ.get("RANK", "0"))
            world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        return rank, world_size
