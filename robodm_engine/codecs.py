"""How each feature of a trajectory is encoded: codec choice, raw byte layout and stream tags.

A trajectory stores one Matroska stream per feature. This module decides, from a
feature's first value and the writer's settings, which of three kinds it is:

- ``rgb``: ``(H, W, 3)`` uint8 images, encoded as video (lossy ``libx264`` by default,
  or a lossless RGB codec);
- ``gray``: ``(H, W)`` uint8/uint16 images (grayscale, depth), always lossless ``ffv1``;
- ``raw``: everything else (any numeric/bool array or scalar, ``str``, ``bytes``), stored
  one packet per sample as the value's bytes, optionally compressed, with dtype and shape
  in the stream tags and decoded with :func:`numpy.frombuffer`, never with pickle.

It also formats and parses the stream tags. ``FEATURE_NAME`` and ``FEATURE_TYPE`` are
written exactly as robodm 0.1.0 writes them (including its stray trailing ``)``) so robodm
tools can list our features; the ``ROBODM_*`` tags carry what robodm's tags cannot say.
"""

from __future__ import annotations

import ast
import re
import struct
from dataclasses import dataclass
from typing import Any, Final, Literal

import av
import numpy as np
import pyarrow as pa

FORMAT_VERSION: Final = "1"

#: Video codec names accepted by ``Trajectory(video_codec=...)``.
VIDEO_CODECS: Final = (
    "auto",
    "libx264",
    "libx265",
    "libsvtav1",
    "libaom-av1",
    "ffv1",
    "libx264rgb",
    "lossless",
    "rawvideo",
)
#: Raw codec names accepted by ``Trajectory(raw_codec=...)``. ``rawvideo`` and
#: ``rawvideo_pyarrow`` are robodm's names for uncompressed storage and mean the same here.
RAW_CODECS: Final = (None, "raw", "rawvideo", "rawvideo_pyarrow", "zstd", "lz4", "gzip")

# Below this size a 2-D array is more likely a matrix than an image; it stays raw.
MIN_IMAGE_SIDE: Final = 16

#: Encoder settings per codec. crf 23 / preset medium is x264's own default operating point
# and measured ~38 dB at ~300 B/frame on 224x224 content; ffv1/x264rgb settings are lossless.
ENCODER_OPTIONS: Final[dict[str, dict[str, str]]] = {
    "libx264": {"crf": "23", "preset": "medium"},
    "libx265": {"crf": "28", "preset": "fast", "x265-params": "log-level=error"},
    "libsvtav1": {"crf": "35", "preset": "8", "svtav1-params": "verbosity=0"},
    "libaom-av1": {"crf": "35", "cpu-used": "8", "row-mt": "1"},
    "libx264rgb": {"qp": "0", "preset": "veryfast"},
    "ffv1": {"level": "3", "slicecrc": "1"},
}
_YUV420_CODECS: Final = ("libx264", "libx265", "libsvtav1", "libaom-av1")

FeatureKind = Literal["rgb", "gray", "raw"]


@dataclass(frozen=True)
class FeatureInfo:
    """What a feature holds and how it is stored.

    Attributes:
        name: the flattened feature name, e.g. ``"observation/image"``.
        dtype: numpy dtype name (``"uint8"``, ``"float32"``), or ``"str"`` / ``"bytes"``.
        shape: the shape of one sample (``()`` for scalars, strings and bytes).
        encoding: the codec name for video streams, ``"raw"`` or ``"raw+<compression>"``
            for raw streams, ``"pickle"`` for robodm 0.1.0's pickled streams.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    encoding: str

    @property
    def is_video(self) -> bool:
        """Whether samples are stored as video frames."""
        return not (self.encoding.startswith("raw") or self.encoding == "pickle")


@dataclass(frozen=True)
class EncodingChoice:
    """The codec decided for a feature: ``codec`` is None for raw storage."""

    kind: FeatureKind
    codec: str | None
    pix_fmt: str | None
    options: dict[str, str]
    compression: str | None = None

    @property
    def encoding(self) -> str:
        """The value of the ``ROBODM_ENCODING`` tag."""
        if self.codec is not None:
            return self.codec
        return "raw" if self.compression is None else f"raw+{self.compression}"


def normalize_value(value: Any) -> tuple[np.ndarray | str | bytes, str, tuple[int, ...]]:
    """Turn a user value into ``(value, dtype_name, shape)`` for storage.

    ``str`` and ``bytes`` stay as they are; everything else becomes a numpy array.

    Raises:
        TypeError: for values that have no fixed dtype and shape (ragged lists, objects).

    Examples:
        >>> normalize_value(3)[1:]
        ('int64', ())
        >>> normalize_value("pick up the cube")[1:]
        ('str', ())
    """
    if isinstance(value, str):
        return value, "str", ()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value), "bytes", ()
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch tensor; torch not imported
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except ValueError as exc:  # numpy >= 1.24 refuses ragged nested sequences
        raise TypeError(f"value has no fixed shape: {exc}") from exc
    if array.dtype == object or array.dtype.kind in "UST":
        raise TypeError(
            f"cannot store values of dtype {array.dtype} (a ragged list or Python objects); "
            "store a numeric array, a str or bytes instead"
        )
    if array.dtype.kind == "V":
        raise TypeError("structured numpy arrays are not supported; store each field separately")
    return array, array.dtype.name, tuple(int(n) for n in array.shape)


def feature_kind(dtype: str, shape: tuple[int, ...]) -> FeatureKind:
    """Classify a feature by the dtype and shape of its samples.

    Examples:
        >>> feature_kind("uint8", (224, 224, 3))
        'rgb'
        >>> feature_kind("uint16", (480, 640))
        'gray'
        >>> feature_kind("float32", (14,))
        'raw'
    """
    if (
        dtype == "uint8"
        and len(shape) == 3
        and shape[2] == 3
        and min(shape[:2]) >= MIN_IMAGE_SIDE
    ):
        return "rgb"
    if dtype in ("uint8", "uint16") and len(shape) == 2 and min(shape) >= MIN_IMAGE_SIDE:
        return "gray"
    return "raw"


def choose_encoding(
    dtype: str,
    shape: tuple[int, ...],
    video_codec: str,
    raw_codec: str | None,
    codec_options: dict[str, Any] | None = None,
) -> EncodingChoice:
    """Decide how a feature is stored.

    ``auto`` encodes RGB with libx264 (crf 23) when both sides are even, and with
    libx264rgb at the same quality otherwise (yuv420p needs even sides). ``lossless`` is
    libx264rgb at qp 0: bit-exact RGB, unlike robodm's yuv420p "lossless". ``rawvideo``
    stores images as raw bytes. Grayscale and depth images always use lossless ffv1.

    ``codec_options`` holds encoder options: flat ones apply to whichever codec is chosen
    (``{"threads": "1"}``), those under a codec's name to that codec only
    (``{"libx264": {"crf": "18"}}``); per-codec entries win.

    Raises:
        ValueError: for an unknown codec name, or a codec that cannot encode this shape.
    """
    if video_codec not in VIDEO_CODECS:
        raise ValueError(f"unknown video_codec {video_codec!r}; choose one of {VIDEO_CODECS}")
    if raw_codec not in RAW_CODECS:
        raise ValueError(f"unknown raw_codec {raw_codec!r}; choose one of {RAW_CODECS}")
    compression = raw_codec if raw_codec in ("zstd", "lz4", "gzip") else None
    kind = feature_kind(dtype, shape)
    if kind == "raw" or video_codec == "rawvideo":
        return EncodingChoice(kind, None, None, {}, compression)
    if kind == "gray":
        pix_fmt = "gray" if dtype == "uint8" else "gray16le"
        return EncodingChoice(kind, "ffv1", pix_fmt, _options("ffv1", codec_options))

    height, width = shape[0], shape[1]
    codec = {"auto": "libx264", "lossless": "libx264rgb"}.get(video_codec, video_codec)
    options = _options(codec, codec_options)
    if video_codec == "auto" and (height % 2 or width % 2):
        # yuv420p needs even sides: keep auto's quality target (crf) but encode RGB directly.
        codec = "libx264rgb"
        options = {"crf": options["crf"], **_user_options(codec, codec_options)}
    if codec in _YUV420_CODECS and (height % 2 or width % 2):
        raise ValueError(
            f"{codec} encodes yuv420p, which needs even image sides; got shape {shape}. "
            "Use video_codec='auto', 'lossless' or 'ffv1' for odd sizes"
        )
    _require_encoder(codec)
    pix_fmt = {"ffv1": "bgr0", "libx264rgb": "rgb24"}.get(codec, "yuv420p")
    return EncodingChoice(kind, codec, pix_fmt, options)


def _user_options(codec: str, codec_options: dict[str, Any] | None) -> dict[str, str]:
    """Flat entries apply to every codec; an entry named after a codec holds its own options."""
    if not codec_options:
        return {}
    flat = {k: str(v) for k, v in codec_options.items() if not isinstance(v, dict)}
    own = codec_options.get(codec)
    return {**flat, **{k: str(v) for k, v in own.items()}} if isinstance(own, dict) else flat


def _options(codec: str, codec_options: dict[str, Any] | None) -> dict[str, str]:
    return {**ENCODER_OPTIONS.get(codec, {}), **_user_options(codec, codec_options)}


def _require_encoder(codec: str) -> None:
    if codec not in av.codecs_available:
        raise ValueError(f"encoder {codec!r} is not available in this FFmpeg build")


_SIZE: Final = struct.Struct("<Q")
_TERMINATOR: Final = b"\x00"


# --- raw samples --------------------------------------------------------------------------


def encode_raw(value: np.ndarray | str | bytes, compression: str | None) -> bytes:
    """Serialize one raw sample: array bytes in C order, or UTF-8 / bytes plus one byte.

    Matroska cannot carry an empty packet (it is the demuxer's end-of-stream marker), so
    str and bytes samples end with a terminator byte and zero-size arrays are one pad byte.
    """
    if isinstance(value, str):
        payload = value.encode("utf-8") + _TERMINATOR
    elif isinstance(value, bytes):
        payload = value + _TERMINATOR
    else:
        payload = np.ascontiguousarray(value).tobytes() or _TERMINATOR
    if compression is None:
        return payload
    # pyarrow's decompress must be told the size; str and bytes samples have no fixed one.
    return _SIZE.pack(len(payload)) + pa.compress(payload, codec=compression, asbytes=True)


def decode_raw(
    payload: bytes, dtype: str, shape: tuple[int, ...], compression: str | None
) -> np.ndarray | str | bytes:
    """Inverse of :func:`encode_raw`.

    Raises:
        ValueError: when the payload's size does not match dtype and shape.
    """
    if compression is not None:
        (size,) = _SIZE.unpack_from(payload)
        payload = pa.decompress(payload[_SIZE.size :], decompressed_size=size, codec=compression,
                                asbytes=True)
    if dtype in ("str", "bytes"):
        if payload[-1:] != _TERMINATOR:
            raise ValueError("string sample lacks its terminator byte")
        return payload[:-1].decode("utf-8") if dtype == "str" else payload[:-1]
    np_dtype = np.dtype(dtype)
    expected = np_dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if expected == 0:
        return np.empty(shape, dtype=np_dtype)
    if len(payload) != expected:
        raise ValueError(f"sample has {len(payload)} bytes, expected {expected} for {dtype}{shape}")
    return np.frombuffer(payload, dtype=np_dtype).reshape(shape)


# --- stream tags ---------------------------------------------------------------------------

_ROBODM_DTYPE_NAMES: Final = {"str": "string", "bytes": "binary"}
_FROM_ROBODM_DTYPE: Final = {
    "string": "str",
    "str": "str",
    "large_string": "str",
    "binary": "bytes",
    "large_binary": "bytes",
    "float": "float32",
    "double": "float64",
    "int": "int32",
}
_FEATURE_TYPE_RE: Final = re.compile(r"^dtype=(?P<dtype>[^;]+);\s*shape=(?P<shape>.*)\)$")


def feature_type_tag(dtype: str, shape: tuple[int, ...]) -> str:
    """Format ``FEATURE_TYPE`` exactly as robodm 0.1.0 does, trailing ``)`` included.

    Examples:
        >>> feature_type_tag("uint8", (224, 224, 3))
        'dtype=uint8; shape=(224, 224, 3))'
    """
    return f"dtype={_ROBODM_DTYPE_NAMES.get(dtype, dtype)}; shape={shape})"


def parse_feature_type_tag(tag: str) -> tuple[str, tuple[int, ...]]:
    """Parse a ``FEATURE_TYPE`` tag (ours or robodm's) without ``eval``.

    Raises:
        ValueError: when the tag is not of the form ``dtype=...; shape=(...))``.

    Examples:
        >>> parse_feature_type_tag("dtype=float32; shape=(14,))")
        ('float32', (14,))
    """
    match = _FEATURE_TYPE_RE.match(tag.strip())
    if match is None:
        raise ValueError(f"malformed FEATURE_TYPE tag {tag!r}")
    dtype = match["dtype"].strip()
    shape_text = match["shape"].strip()
    shape: Any = () if shape_text == "None" else ast.literal_eval(shape_text)
    if not isinstance(shape, tuple) or not all(isinstance(n, int) for n in shape):
        raise ValueError(f"malformed shape in FEATURE_TYPE tag {tag!r}")
    return _FROM_ROBODM_DTYPE.get(dtype, dtype), shape
