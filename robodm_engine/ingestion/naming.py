"""Trajectory names: deterministic, unique within a job, and safe as object keys.

A trajectory named ``n`` is stored as ``<output>/n.mkv`` with its record at
``<output>/_robodm/records/n.json``, so a name must be a single, harmless path segment
whatever a user's ``get_trajectory_filename`` returns. Names are decided in the driver,
from the global group index, before any work is shipped to Ray: two workers can never pick
the same name (upstream robodm restarted the index in every worker batch and workers
overwrote each other's files).
"""

from __future__ import annotations

import re

from robodm_engine.errors import IngestionError

__all__ = ["TRAJECTORY_SUFFIX", "NameRegistry", "default_name", "sanitize_name"]

TRAJECTORY_SUFFIX = ".mkv"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_LEN = 200


def default_name(prefix: str, index: int) -> str:
    """Return the default name of group ``index``: ``f"{prefix}_{index:06d}"``.

    Examples:
        >>> default_name("trajectory", 3)
        'trajectory_000003'
    """
    return f"{prefix}_{index:06d}"


def sanitize_name(raw: object) -> str:
    r"""Turn a user-supplied trajectory name into one safe path segment.

    Directories are stripped (only the last component of ``a/b`` or ``a\b`` is kept), a
    trailing ``.mkv`` is dropped, characters outside ``[A-Za-z0-9._-]`` (control characters,
    spaces, ``:``) become ``_`` and leading dots are removed, so ``..`` or hidden names
    cannot occur.

    Raises:
        IngestionError: the name is not a string, or nothing usable is left of it.

    Examples:
        >>> sanitize_name("../../etc/passwd")
        'passwd'
        >>> sanitize_name("episode 7.mkv")
        'episode_7'
        >>> sanitize_name("tab\there")
        'tab_here'
        >>> sanitize_name("a/..")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        robodm_engine.errors.IngestionError: trajectory name 'a/..' has no usable characters ...
    """
    if not isinstance(raw, str):
        raise IngestionError(
            f"get_trajectory_filename must return a str, got {type(raw).__name__}: {raw!r}"
        )
    last = [part for part in raw.replace("\\", "/").split("/") if part.strip()]
    name = last[-1] if last else ""
    if name.endswith(TRAJECTORY_SUFFIX):
        name = name[: -len(TRAJECTORY_SUFFIX)]
    name = _UNSAFE.sub("_", name).lstrip(".")[:_MAX_LEN]
    if not name.strip("._-"):
        raise IngestionError(
            f"trajectory name {raw!r} has no usable characters left after removing "
            "directories and unsafe characters"
        )
    return name


class NameRegistry:
    """Names handed out so far in one job; refuses a second group with the same name.

    Examples:
        >>> names = NameRegistry()
        >>> names.claim("a", 0)
        >>> names.claim("a", 5)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        robodm_engine.errors.IngestionError: groups 0 and 5 are both named 'a'; make ...
    """

    def __init__(self) -> None:
        self._owner: dict[str, int] = {}

    def claim(self, name: str, index: int) -> None:
        """Record that group ``index`` is called ``name``.

        Raises:
            IngestionError: another group already has that name.
        """
        previous = self._owner.setdefault(name, index)
        if previous != index:
            raise IngestionError(
                f"groups {previous} and {index} are both named {name!r}; make "
                "get_trajectory_filename return a unique name per group (e.g. include the index)"
            )
