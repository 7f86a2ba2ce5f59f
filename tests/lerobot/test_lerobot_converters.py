"""Contract tests for FormatConverter, Observation and DataFormat (no dataset on disk)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

pytest.importorskip("lerobot")

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lightning.fabric.utilities.apply_func import move_data_to_device

from robodm_engine.lerobot import DataFormat, FormatConverter, Observation, converters

INDEX_KEYS = ("episode_index", "frame_index", "index", "task_index", "timestamp")


def lerobot_sample(batch: int | None = None) -> dict[str, Any]:
    """A flat LeRobot sample as LeRobotDataset returns it with delta_timestamps set.

    ``batch=None`` gives one frame; an int gives the same keys collated over that many.
    """
    lead = () if batch is None else (batch,)

    def tensor(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.zeros((*lead, *shape), dtype=dtype)

    return {
        "observation.images.top": tensor(2, 3, 8, 8),
        "observation.images.wrist": tensor(3, 8, 8),
        "observation.state": tensor(6),
        "observation.environment_state": tensor(3),
        "action": tensor(5, 4),
        "next.reward": tensor(),
        "next.success": tensor(dtype=torch.bool),
        "next.done": tensor(dtype=torch.bool),
        **{key: tensor(dtype=torch.int64) for key in INDEX_KEYS},
        "observation.images.top_is_pad": tensor(2, dtype=torch.bool),
        "action_is_pad": tensor(5, dtype=torch.bool),
        "task": "pick the cube" if batch is None else ["pick the cube"] * batch,
        "info": {"source": "test"},
    }


def assert_same_objects(left: dict[str, Any], right: dict[str, Any]) -> None:
    assert left.keys() == right.keys()
    for key in left:
        assert left[key] is right[key], key


@pytest.mark.parametrize("batch", [None, 1, 3], ids=["unbatched", "batch1", "batch3"])
def test_to_observation_maps_every_lerobot_key_without_copying(batch: int | None) -> None:
    sample = lerobot_sample(batch)

    obs = FormatConverter.to_observation(sample)

    assert obs.images == {
        "top": sample["observation.images.top"],
        "wrist": sample["observation.images.wrist"],
    }
    assert obs.images["top"] is sample["observation.images.top"]
    assert obs.images["wrist"] is sample["observation.images.wrist"]
    assert obs.state is sample["observation.state"]
    assert obs.action is sample["action"]
    assert obs.task is sample["task"]
    assert obs.next_reward is sample["next.reward"]
    assert obs.next_success is sample["next.success"]
    assert obs.info is sample["info"]
    for key in INDEX_KEYS:
        assert getattr(obs, key) is sample[key], key
    assert obs.is_pad.keys() == {"observation.images.top", "action"}
    assert obs.is_pad["observation.images.top"] is sample["observation.images.top_is_pad"]
    assert obs.is_pad["action"] is sample["action_is_pad"]
    assert obs.extra.keys() == {"observation.environment_state", "next.done"}
    assert obs.extra["next.done"] is sample["next.done"]


@pytest.mark.parametrize("batch", [None, 3], ids=["unbatched", "batched"])
def test_dict_to_observation_to_dict_is_identity(batch: int | None) -> None:
    sample = lerobot_sample(batch)

    restored = FormatConverter.to_lerobot_dict(FormatConverter.to_observation(sample))

    assert_same_objects(restored, sample)


@pytest.mark.parametrize("batch", [None, 3], ids=["unbatched", "batched"])
def test_observation_to_dict_to_observation_is_identity(batch: int | None) -> None:
    obs = FormatConverter.to_observation(lerobot_sample(batch))

    restored = FormatConverter.to_observation(FormatConverter.to_lerobot_dict(obs))

    for spec in dataclasses.fields(Observation):
        original, again = getattr(obs, spec.name), getattr(restored, spec.name)
        if isinstance(original, dict) and spec.name != "info":
            assert_same_objects(again, original)
        else:
            assert again is original, spec.name


def test_key_names_match_lerobot_constants() -> None:
    from lerobot.utils import constants

    assert converters.OBS_PREFIX == constants.OBS_PREFIX
    assert converters.OBS_IMAGE == constants.OBS_IMAGE
    assert converters.OBS_IMAGES_PREFIX == constants.OBS_IMAGES + "."
    assert converters.OBS_STATE == constants.OBS_STATE
    assert (
        converters.FormatConverter.to_observation(
            {constants.ACTION: 1, constants.REWARD: 2, constants.SUCCESS: 3, constants.INFO: 4}
        ).extra
        == {}
    )


def test_to_observation_returns_an_observation_unchanged() -> None:
    obs = Observation(action=torch.zeros(4))

    assert FormatConverter.to_observation(obs) is obs


def test_to_lerobot_dict_returns_a_lerobot_dict_unchanged() -> None:
    sample = lerobot_sample()

    assert FormatConverter.to_lerobot_dict(sample) is sample


def test_to_lerobot_dict_returns_a_flat_dict_without_observation_keys_unchanged() -> None:
    sample = {"action": torch.zeros(4), "task": "pick", "info": {"nested": {"kept": True}}}

    assert FormatConverter.to_lerobot_dict(sample) is sample


def test_nested_dict_is_flattened_with_dots_keeping_objects() -> None:
    top, state, action, reward = (
        torch.zeros(3, 8, 8),
        torch.zeros(6),
        torch.zeros(4),
        torch.ones(()),
    )
    info = {"kept": "as a dict"}
    nested = {
        "observation": {"images": {"top": top}, "state": state},
        "action": action,
        "next": {"reward": reward},
        "info": info,
    }
    expected = {
        "observation.images.top": top,
        "observation.state": state,
        "action": action,
        "next.reward": reward,
        "info": info,
    }

    assert_same_objects(FormatConverter.to_lerobot_dict(nested), expected)
    obs = FormatConverter.to_observation(nested)
    assert obs.images["top"] is top
    assert obs.state is state
    assert obs.action is action
    assert obs.next_reward is reward
    assert obs.info is info


def test_nested_dict_spelling_a_key_twice_is_rejected() -> None:
    nested = {"next": {"reward": torch.zeros(())}, "next.reward": torch.ones(())}

    with pytest.raises(ValueError, match=r"'next\.reward' twice"):
        FormatConverter.to_lerobot_dict(nested)


def test_padding_mask_of_a_camera_is_not_a_camera() -> None:
    frames, mask = torch.zeros(2, 3, 8, 8), torch.tensor([True, False])

    obs = FormatConverter.to_observation(
        {"observation.images.top": frames, "observation.images.top_is_pad": mask}
    )

    assert obs.images == {"top": frames}
    assert obs.is_pad == {"observation.images.top": mask}
    assert FormatConverter.to_lerobot_dict(obs)["observation.images.top_is_pad"] is mask


def test_single_camera_key_round_trips_as_camera_image() -> None:
    image, mask = torch.zeros(3, 8, 8), torch.tensor([False])
    sample = {"observation.image": image, "observation.image_is_pad": mask}

    obs = FormatConverter.to_observation(sample)

    assert obs.images == {"image": image}
    assert obs.is_pad == {"observation.image": mask}
    assert_same_objects(FormatConverter.to_lerobot_dict(obs), sample)


def test_camera_named_image_under_observation_images_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"'observation\.images\.image' is ambiguous"):
        FormatConverter.to_observation({"observation.images.image": torch.zeros(3, 8, 8)})


@pytest.mark.parametrize(
    ("observation", "message"),
    [
        (Observation(extra={"action": 1}), r"extra\['action'\].*read back as field 'action'"),
        (
            Observation(extra={"observation.images.top": 1}),
            r"extra\['observation\.images\.top'\].*read back as images 'top'",
        ),
        (Observation(extra={"observation.images.image": 1}), r"read back as nothing"),
        (Observation(images={"top_is_pad": torch.zeros(1)}), r"read back as is_pad"),
        (Observation(images={"": torch.zeros(1)}), r"images\[''\].*read back as extra"),
        (Observation(is_pad={"": torch.zeros(1)}), r"is_pad\[''\].*read back as extra"),
    ],
    ids=["extra-field", "extra-camera", "extra-ambiguous", "camera-pad", "camera-empty", "pad"],
)
def test_observation_that_would_not_round_trip_is_rejected(
    observation: Observation, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        FormatConverter.to_lerobot_dict(observation)


def test_to_lerobot_dict_leaves_out_unset_fields() -> None:
    action = torch.zeros(4)

    assert FormatConverter.to_lerobot_dict(Observation(action=action)) == {"action": action}


@pytest.mark.parametrize(
    "convert", [FormatConverter.to_observation, FormatConverter.to_lerobot_dict]
)
def test_inputs_that_are_not_samples_are_rejected(convert: Any) -> None:
    with pytest.raises(TypeError, match="expected an Observation or a LeRobot dict, got list"):
        convert([("action", torch.zeros(4))])
    with pytest.raises(TypeError, match="keys must be str"):
        convert({0: torch.zeros(4)})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("getiaction", DataFormat.GETIACTION),
        ("lerobot", DataFormat.LEROBOT),
        ("LeRobot", DataFormat.LEROBOT),
        (DataFormat.LEROBOT, DataFormat.LEROBOT),
    ],
)
def test_data_format_accepts_strings(name: str, expected: DataFormat) -> None:
    assert DataFormat(name) is expected


def test_unknown_data_format_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown data format 'rlds'.*'getiaction', 'lerobot'"):
        DataFormat("rlds")


def test_convert_dispatches_on_the_format_name() -> None:
    sample = {"action": torch.zeros(4)}

    obs = FormatConverter.convert(sample, "getiaction")
    assert isinstance(obs, Observation)
    assert obs.action is sample["action"]
    assert FormatConverter.convert(sample, DataFormat.LEROBOT) is sample
    assert_same_objects(FormatConverter.convert(obs, "lerobot"), sample)  # type: ignore[arg-type]


def test_observation_is_frozen() -> None:
    obs = Observation()

    with pytest.raises(dataclasses.FrozenInstanceError):
        obs.action = torch.zeros(4)  # type: ignore[misc]


def test_to_moves_every_tensor_and_keeps_other_values() -> None:
    obs = FormatConverter.to_observation(lerobot_sample(batch=2))

    moved = obs.to("meta")

    flat = FormatConverter.to_lerobot_dict(moved)
    for key, value in flat.items():
        if isinstance(value, torch.Tensor):
            assert value.device.type == "meta", key
    assert moved.task is obs.task
    assert moved.info is obs.info


def test_lightning_moves_an_observation_batch_to_a_device() -> None:
    """Lightning cannot rebuild a frozen dataclass field by field; it must call .to()."""
    obs = Observation(action=torch.zeros(2, 4), images={"top": torch.zeros(2, 3, 8, 8)})

    on_cpu = move_data_to_device(obs, "cpu")
    on_meta = move_data_to_device(obs, torch.device("meta"))

    assert on_cpu.action is obs.action  # already there: not copied
    assert on_cpu.images["top"] is obs.images["top"]
    assert on_meta.action.device.type == "meta"
    assert on_meta.images["top"].device.type == "meta"


# Property tests: the generated keys cover every routing rule (fields, single and named
# cameras, pads of anything, unknown keys that merely look like known ones).

_NAME = st.from_regex(r"[a-z][a-z0-9_.]{0,10}", fullmatch=True)
_KNOWN_KEYS = [
    "action",
    "task",
    "observation.state",
    "observation.image",
    "next.reward",
    "next.success",
    "next.done",
    "info",
    *INDEX_KEYS,
]
_FLAT_KEY = st.one_of(
    st.sampled_from(_KNOWN_KEYS),
    st.builds("observation.images.{}".format, _NAME),
    st.builds(
        "{}{}".format, st.sampled_from(["", "observation.", "next.", "action.", "task_"]), _NAME
    ),
).filter(lambda key: key != "observation.images.image")
_PADDED_KEY = st.one_of(_FLAT_KEY, st.builds("{}_is_pad".format, _FLAT_KEY))


@settings(max_examples=200, deadline=None)
@given(keys=st.sets(_PADDED_KEY, max_size=12))
def test_any_lerobot_dict_round_trips_through_observation(keys: set[str]) -> None:
    sample = {key: object() for key in keys}

    obs = FormatConverter.to_observation(sample)
    restored = FormatConverter.to_lerobot_dict(obs)

    assert_same_objects(restored, sample)


_CAMERA = _NAME.filter(lambda name: not name.endswith("_is_pad"))
_EXTRA_KEY = st.one_of(
    st.sampled_from(["next.done", "next.truncated", "observation.environment_state"]),
    st.builds("custom.{}".format, _CAMERA),
)
_VALUES = st.builds(object)


@settings(max_examples=200, deadline=None)
@given(
    images=st.dictionaries(_CAMERA, _VALUES, max_size=4),
    is_pad=st.dictionaries(st.one_of(_NAME, _PADDED_KEY), _VALUES, max_size=4),
    extra=st.dictionaries(_EXTRA_KEY, _VALUES, max_size=4),
    action=st.one_of(st.none(), _VALUES),
    state=st.one_of(st.none(), _VALUES),
)
def test_any_observation_round_trips_through_lerobot_dict(
    images: dict[str, Any],
    is_pad: dict[str, Any],
    extra: dict[str, Any],
    action: Any,
    state: Any,
) -> None:
    obs = Observation(action=action, state=state, images=images, is_pad=is_pad, extra=extra)

    restored = FormatConverter.to_observation(FormatConverter.to_lerobot_dict(obs))

    assert restored.action is action
    assert restored.state is state
    for name in ("images", "is_pad", "extra"):
        assert_same_objects(getattr(restored, name), getattr(obs, name))
