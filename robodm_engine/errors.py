"""The exceptions robodm_engine raises, in one small hierarchy.

Every error a user can cause (a bad file, a bad spec, a bad item) derives from
:class:`RobodmError`, so ``except RobodmError`` catches them all while programming
errors (``TypeError`` from a wrong call, bugs) still surface as themselves. Messages
name what is wrong and where (file, feature, item, spec path) and, where there is
one, how to fix it; the underlying cause is chained with ``raise ... from``.
"""

from __future__ import annotations


class RobodmError(Exception):
    """Base class of every error raised on purpose by robodm_engine."""


class TrajectoryError(RobodmError):
    """A trajectory file cannot be written or read.

    Attributes:
        path: the trajectory file concerned.
        feature: the feature concerned, or ``None`` when the whole file is.
    """

    def __init__(self, message: str, *, path: str, feature: str | None = None) -> None:
        where = f"{path}" if feature is None else f"{path} [feature {feature!r}]"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.feature = feature


class TrajectoryFormatError(TrajectoryError):
    """The file is missing, empty, truncated or not a trajectory (Matroska) file."""


class FeatureMismatchError(TrajectoryError):
    """A feature's dtype or shape changed in the middle of a trajectory."""


class TimestampError(TrajectoryError):
    """A timestamp goes backwards, or cannot be represented in the file's time base."""


class CodecError(TrajectoryError):
    """A codec name is unknown, unavailable, or cannot encode the given data."""


class PickleNotAllowedError(TrajectoryError):
    """The file stores pickled data (robodm 0.1.0) and the caller did not opt in.

    Pass ``allow_pickle=True`` only for files from a source you trust: unpickling
    runs arbitrary code.
    """


class IngestionError(RobodmError):
    """An ingestion job cannot run or failed beyond its failure policy."""


class SpecError(RobodmError):
    """A job specification is invalid; ``problems`` lists each ``(path, message)``."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        lines = "\n".join(f"  {path}: {message}" for path, message in problems)
        super().__init__(f"invalid job spec ({len(problems)} problem(s)):\n{lines}")
        self.problems = problems


class StorageError(RobodmError):
    """An object-storage operation failed after its retries, or a URI is malformed."""


class DatasetError(RobodmError):
    """A dataset (manifest, trajectory listing) cannot be opened or read."""
