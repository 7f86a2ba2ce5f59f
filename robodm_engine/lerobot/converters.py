"""Zero-copy conversion between LeRobot's flat sample dicts and :class:`Observation`.

LeRobot hands out one flat dict per frame (or per batch, after collation) whose keys are
dot-separated feature names: ``observation.images.top``, ``observation.state``, ``action``,
``next.reward``, ``task``... GetiAction-style policies want a typed :class:`Observation`
instead. :class:`FormatConverter` moves *references* between the two shapes; it never
touches tensor data, so converting costs a few dict operations per key whatever the
batch size.

Key mapping (flat LeRobot key -> Observation slot), applied in this order:

==============================  ================================================
``<feature>_is_pad``            ``is_pad[<feature>]`` (any feature, see below)
``observation.image``           ``images["image"]`` (single-camera datasets)
``observation.images.<cam>``    ``images[<cam>]`` (``<cam>`` non-empty, not ``image``)
``observation.state``           ``state``
``action``                      ``action``
``task``                        ``task``
``next.reward``                 ``next_reward``
``next.success``                ``next_success``
``episode_index`` ...           the field of the same name (``frame_index``,
                                ``index``, ``task_index``, ``timestamp``)
``info``                        ``info``
anything else                   ``extra[<key>]`` under its original key
                                (``next.done``, ``observation.environment_state``...)
==============================  ================================================

Padding masks. With ``delta_timestamps`` LeRobot adds ``<feature>_is_pad`` boolean masks
next to each windowed feature. They are *not* data of that feature (a mask named
``observation.images.top_is_pad`` is not a camera), so they are kept apart in
``Observation.is_pad``, keyed by the full LeRobot feature name:
``is_pad["observation.images.top"]``, ``is_pad["action"]``. The flat key is rebuilt as
``f"{feature}_is_pad"``, which restores it exactly.

Single camera. ``observation.image`` (e.g. ``lerobot/pusht``) becomes the camera
``"image"`` and is written back as ``observation.image``. To keep that bijective, the
flat key ``observation.images.image`` is rejected with a ``ValueError``: it would land on
the same camera name.

Every mapping is checked to be invertible when an :class:`Observation` is flattened (an
``extra`` key such as ``"action"`` would be read back as the action field and is
rejected), so both round trips are the identity: ``dict -> Observation -> dict`` gives
the same keys bound to the very same objects, and so does ``Observation -> dict ->
Observation`` field by field. (A field holding ``None`` counts as absent and produces no
key; LeRobot never puts ``None`` in a sample.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Literal, Self

import torch

__all__ = ["DataFormat", "FormatConverter", "Observation"]

# LeRobot's spelling of the keys, restated from lerobot.utils.constants so the mapping
# table above reads in one place; the tests check that both still agree.
OBS_PREFIX: Final = "observation."
OBS_IMAGE: Final = "observation.image"
OBS_IMAGES_PREFIX: Final = "observation.images."
OBS_STATE: Final = "observation.state"
PAD_SUFFIX: Final = "_is_pad"
SINGLE_CAMERA: Final = "image"
"""Camera name under which ``observation.image`` appears in ``Observation.images``."""

_DIRECT_FIELDS: Final[dict[str, str]] = {
    "action": "action",
    "task": "task",
    OBS_STATE: "state",
    "next.reward": "next_reward",
    "next.success": "next_success",
    "episode_index": "episode_index",
    "frame_index": "frame_index",
    "index": "index",
    "task_index": "task_index",
    "timestamp": "timestamp",
    "info": "info",
}
_FLAT_KEY_OF_FIELD: Final[dict[str, str]] = {name: key for key, name in _DIRECT_FIELDS.items()}
_NESTED_KEEP: Final = frozenset({"info"})
"""Top-level keys whose values are dicts in LeRobot's flat format; never flattened."""

type _MappingSlot = Literal["images", "is_pad", "extra"]
type _Slot = tuple[Literal["field"] | _MappingSlot, str]
"""Where a flat key lives in an Observation: a field name, or a mapping and its key."""


class DataFormat(StrEnum):
    """The two sample layouts a data pipeline can emit.

    Plain strings are accepted wherever a ``DataFormat`` is (matching is
    case-insensitive), and an unknown name raises ``ValueError`` listing the valid ones.

    Examples:
        >>> DataFormat("LeRobot") is DataFormat.LEROBOT
        True
    """

    GETIACTION = "getiaction"
    """Typed :class:`Observation` dataclasses."""
    LEROBOT = "lerobot"
    """LeRobot's flat dicts keyed by dot-separated feature names."""

    @classmethod
    def _missing_(cls, value: object) -> DataFormat:
        if isinstance(value, str):
            for member in cls:
                if member.value == value.lower():
                    return member
        valid = ", ".join(repr(member.value) for member in cls)
        raise ValueError(f"unknown data format {value!r}; expected one of {valid}")


@dataclass(frozen=True, eq=False, kw_only=True, slots=True)
class Observation:
    """One frame, or a batch of frames, of a robot-learning dataset.

    Unbatched, tensors have their per-frame shape (``state``: ``(D,)``, an image:
    ``(C, H, W)``) and ``task`` is a ``str``; batched, every tensor gains a leading batch
    dimension and ``task`` is a ``list[str]``. Fields absent from the source are ``None``
    (or empty mappings). Equality is identity: comparing tensors field by field has no
    single boolean answer.

    Attributes:
        action: The action taken at this frame; ``(T, A)`` when windowed by
            ``delta_timestamps``.
        task: Natural-language task description.
        state: Proprioceptive state (``observation.state``).
        images: Camera name -> image tensor, float32 ``(C, H, W)`` in ``[0, 1]`` as
            LeRobot decodes them. ``observation.image`` appears as camera ``"image"``.
        next_reward: Reward received after the action (``next.reward``).
        next_success: Whether the episode succeeded after the action (``next.success``).
        episode_index: Episode the frame belongs to.
        frame_index: Position of the frame within its episode.
        index: Position of the frame within the whole dataset.
        task_index: Row of ``task`` in the dataset's task table.
        timestamp: Seconds since the start of the episode.
        info: LeRobot's free-form ``info`` dict, when present.
        is_pad: LeRobot feature name -> boolean padding mask of its
            ``delta_timestamps`` window (``True`` where the frame lies outside the
            episode and was clamped); from the flat keys ``<feature>_is_pad``.
        extra: Every other flat key, unchanged (``next.done``,
            ``observation.environment_state``, ...).

    Examples:
        >>> import torch
        >>> obs = Observation(state=torch.zeros(6), images={"top": torch.zeros(3, 8, 8)})
        >>> sorted(FormatConverter.to_lerobot_dict(obs))
        ['observation.images.top', 'observation.state']
    """

    action: torch.Tensor | None = None
    task: str | list[str] | None = None
    state: torch.Tensor | None = None
    images: dict[str, torch.Tensor] = field(default_factory=dict)
    next_reward: torch.Tensor | None = None
    next_success: torch.Tensor | None = None
    episode_index: torch.Tensor | None = None
    frame_index: torch.Tensor | None = None
    index: torch.Tensor | None = None
    task_index: torch.Tensor | None = None
    timestamp: torch.Tensor | None = None
    info: dict[str, Any] | None = None
    is_pad: dict[str, torch.Tensor] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> Self:
        """Return a copy whose tensors (also inside mappings and lists) are on ``device``.

        Tensors already on ``device`` are reused, not copied. Defining ``to`` is also what
        makes Lightning's ``transfer_batch_to_device`` move an ``Observation`` batch:
        being frozen, it cannot be updated in place.

        Args:
            device: Target device, e.g. ``"cuda:0"``.
            non_blocking: Passed to every ``Tensor.to`` call.

        Returns:
            A new Observation; values without tensors are shared with this one.
        """

        def move(value: Any) -> Any:
            # Containers are rebuilt only when something inside them moved, so that e.g.
            # the task list of a batch stays the very same object.
            if isinstance(value, torch.Tensor):
                return value.to(device, non_blocking=non_blocking)
            if isinstance(value, Mapping):
                moved = {key: move(item) for key, item in value.items()}
                unchanged = all(moved[key] is item for key, item in value.items())
                return value if unchanged else moved
            if isinstance(value, list | tuple):
                items = [move(item) for item in value]
                unchanged = all(new is old for new, old in zip(items, value, strict=True))
                return value if unchanged else type(value)(items)
            return value

        changes = {f.name: move(getattr(self, f.name)) for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **changes)


def _slot_of(key: str) -> _Slot:
    """Return where the flat LeRobot ``key`` lives in an :class:`Observation`.

    Raises:
        ValueError: ``key`` is ``observation.images.image``, which would collide with
            ``observation.image`` (both would be camera ``"image"``).
    """
    if key.endswith(PAD_SUFFIX) and len(key) > len(PAD_SUFFIX):
        return ("is_pad", key.removesuffix(PAD_SUFFIX))
    if key == OBS_IMAGE:
        return ("images", SINGLE_CAMERA)
    if key.startswith(OBS_IMAGES_PREFIX) and len(key) > len(OBS_IMAGES_PREFIX):
        camera = key.removeprefix(OBS_IMAGES_PREFIX)
        if camera == SINGLE_CAMERA:
            raise ValueError(
                f"the key {key!r} is ambiguous: camera {SINGLE_CAMERA!r} is reserved for "
                f"LeRobot's single-camera key {OBS_IMAGE!r}; rename the camera "
                f"(e.g. {OBS_IMAGES_PREFIX}main)"
            )
        return ("images", camera)
    if key in _DIRECT_FIELDS:
        return ("field", _DIRECT_FIELDS[key])
    return ("extra", key)


def _flat_key_of(kind: _MappingSlot, name: str) -> str:
    """Return the flat key of ``Observation.<kind>[name]``, checking that it maps back.

    Raises:
        ValueError: The entry has no flat key that :func:`_slot_of` maps back to it, e.g.
            camera ``"top_is_pad"`` (read back as a padding mask) or extra key
            ``"action"`` (read back as the action field).
    """
    if kind == "images":
        key = OBS_IMAGE if name == SINGLE_CAMERA else OBS_IMAGES_PREFIX + name
    elif kind == "is_pad":
        key = name + PAD_SUFFIX
    else:
        key = name
    try:
        read_back: _Slot | None = _slot_of(key)
    except ValueError:
        read_back = None
    if read_back != (kind, name):
        target = "nothing" if read_back is None else f"{read_back[0]} {read_back[1]!r}"
        raise ValueError(
            f"Observation.{kind}[{name!r}] cannot be converted losslessly: its LeRobot key "
            f"{key!r} would be read back as {target}; rename it or set the matching field"
        )
    return key


def _check_keys(batch: Mapping[Any, Any]) -> None:
    for key in batch:
        if not isinstance(key, str):
            raise TypeError(f"sample keys must be str, got {key!r} ({type(key).__name__})")


def _is_nested(batch: Mapping[str, Any]) -> bool:
    return any(isinstance(v, Mapping) for k, v in batch.items() if k not in _NESTED_KEEP)


def _flatten(batch: Mapping[str, Any]) -> dict[str, Any]:
    """Join nested keys with dots: ``{"observation": {"state": s}}`` -> ``observation.state``."""
    flat: dict[str, Any] = {}

    def visit(prefix: str, mapping: Mapping[Any, Any]) -> None:
        _check_keys(mapping)
        for key, value in mapping.items():
            path = f"{prefix}{key}"
            if isinstance(value, Mapping) and not (prefix == "" and key in _NESTED_KEEP):
                visit(path + ".", value)
            elif path in flat:
                raise ValueError(f"the nested sample defines {path!r} twice")
            else:
                flat[path] = value

    visit("", batch)
    return flat


class FormatConverter:
    """Convert samples and batches between LeRobot dicts and :class:`Observation`.

    Both directions are zero-copy (output values are the input objects), work the same
    for single frames and collated batches, and return the input itself when it is
    already in the target format, so calling them defensively costs nothing. The key
    mapping is documented in :mod:`robodm_engine.lerobot.converters`.

    Examples:
        >>> import torch
        >>> sample = {"observation.state": torch.zeros(6), "action": torch.ones(4)}
        >>> obs = FormatConverter.to_observation(sample)
        >>> obs.state is sample["observation.state"]
        True
        >>> FormatConverter.to_lerobot_dict(obs) == sample
        True
    """

    @staticmethod
    def to_observation(batch: Observation | Mapping[str, Any]) -> Observation:
        """Convert a flat (or nested) LeRobot sample or batch to an :class:`Observation`.

        Args:
            batch: An Observation (returned as is), a flat LeRobot dict, or the same keys
                nested (``{"observation": {"images": {"top": t}}, "action": a}``).

        Returns:
            An Observation referencing the input's values.

        Raises:
            TypeError: ``batch`` is neither a mapping nor an Observation, or has a
                non-string key.
            ValueError: A key is ambiguous (``observation.images.image``), or a nested
                input spells the same flat key twice.

        Examples:
            >>> import torch
            >>> mask = torch.tensor([False, True])
            >>> obs = FormatConverter.to_observation({"action_is_pad": mask})
            >>> obs.is_pad["action"] is mask
            True
        """
        if isinstance(batch, Observation):
            return batch
        if not isinstance(batch, Mapping):
            raise TypeError(
                f"expected an Observation or a LeRobot dict, got {type(batch).__name__}"
            )
        _check_keys(batch)
        flat = _flatten(batch) if _is_nested(batch) else batch
        fields: dict[str, Any] = {}
        images: dict[str, Any] = {}
        is_pad: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        targets = {"field": fields, "images": images, "is_pad": is_pad, "extra": extra}
        for key, value in flat.items():
            kind, name = _slot_of(key)
            targets[kind][name] = value
        return Observation(**fields, images=images, is_pad=is_pad, extra=extra)

    @staticmethod
    def to_lerobot_dict(batch: Observation | Mapping[str, Any]) -> dict[str, Any]:
        """Convert a sample or batch to LeRobot's flat dict format.

        A dict that already has an ``observation.*`` key is returned unchanged (the same
        object), and so is a dict without nested values; a nested dict is flattened by
        joining its keys with dots (except ``info``, a dict in LeRobot's format too).

        Args:
            batch: An Observation, a flat LeRobot dict, or the same keys nested.

        Returns:
            A flat dict; ``None`` fields and empty mappings of an Observation are left out.

        Raises:
            TypeError: ``batch`` is neither a mapping nor an Observation, or has a
                non-string key.
            ValueError: An Observation cannot be flattened losslessly (e.g. an ``extra``
                key named like a field, or a camera named ``"x_is_pad"``), or a nested
                input spells the same flat key twice.

        Examples:
            >>> import torch
            >>> top = torch.zeros(3, 8, 8)
            >>> flat = FormatConverter.to_lerobot_dict({"observation": {"images": {"top": top}}})
            >>> flat["observation.images.top"] is top
            True
        """
        if isinstance(batch, Observation):
            return _observation_to_flat(batch)
        if not isinstance(batch, Mapping):
            raise TypeError(
                f"expected an Observation or a LeRobot dict, got {type(batch).__name__}"
            )
        # The common case during training: a collated LeRobot batch. Checking keys only
        # keeps this O(number of keys) whatever the batch size.
        if any(key.startswith(OBS_PREFIX) for key in batch if isinstance(key, str)):
            return batch if isinstance(batch, dict) else dict(batch)
        _check_keys(batch)
        if _is_nested(batch):
            return _flatten(batch)
        return batch if isinstance(batch, dict) else dict(batch)

    @staticmethod
    def convert(
        batch: Observation | Mapping[str, Any], data_format: DataFormat | str
    ) -> Observation | dict[str, Any]:
        """Convert ``batch`` to ``data_format`` (``"getiaction"`` or ``"lerobot"``).

        Args:
            batch: An Observation or a LeRobot dict, flat or nested.
            data_format: The target format; strings are accepted.

        Returns:
            ``to_observation(batch)`` or ``to_lerobot_dict(batch)``.

        Raises:
            ValueError: ``data_format`` is unknown, or the conversion itself fails.

        Examples:
            >>> import torch
            >>> FormatConverter.convert({"action": torch.zeros(4)}, "getiaction").action.shape
            torch.Size([4])
        """
        if DataFormat(data_format) is DataFormat.GETIACTION:
            return FormatConverter.to_observation(batch)
        return FormatConverter.to_lerobot_dict(batch)


def _observation_to_flat(observation: Observation) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, key in _FLAT_KEY_OF_FIELD.items():
        value = getattr(observation, name)
        if value is not None:
            flat[key] = value
    # _flat_key_of checks that each key maps back to its own slot; as _slot_of is a
    # function, two slots can then never produce the same key, so nothing is overwritten.
    for name, value in observation.images.items():
        flat[_flat_key_of("images", name)] = value
    for name, value in observation.is_pad.items():
        flat[_flat_key_of("is_pad", name)] = value
    for name, value in observation.extra.items():
        flat[_flat_key_of("extra", name)] = value
    return flat
