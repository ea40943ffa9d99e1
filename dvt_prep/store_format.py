"""How each array of a store is kept on disk: dtype, quantisation, chunking, compression.

The read API (`Store.read`) returns docs/design.md §3's dtypes; what lies on disk may be quantised
within the bounds of docs/design.md §3. `to_disk` and `from_disk` are the two directions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from zarr.codecs import BloscCodec

from dvt_prep.cue_names import RGB_CODECS  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class ArraySpec:
    """How one array is kept on disk and what the read API returns.

    With a scale, values are stored as round(value * scale) in disk_dtype and read back divided
    by it: the error is at most 0.5 / scale.
    """

    disk_dtype: str
    read_dtype: str
    frames_per_chunk: int
    scale: float | None = None


COMPUTED_CUES = ("rgbr", "rgbd")  # computed at read time where rgb is kept as H.264
# Where rgb is H.264 (dvt_prep.rgb_stream), it is kept as these two arrays; "rgb" is then only
# a name in the video's entry. frames_per_chunk of rgb_h264 counts bytes.
RGB_STREAM_ARRAYS = ("rgb_h264", "rgb_packets")

ARRAYS: dict[str, ArraySpec] = {
    "rgb": ArraySpec("uint8", "uint8", 1),
    "rgb_h264": ArraySpec("uint8", "uint8", 1 << 16),
    "rgb_packets": ArraySpec("int64", "int64", 256),
    "mv": ArraySpec("int16", "float32", 16, scale=16),  # quarter-pel exact; 1/32 px otherwise
    "mv_valid": ArraySpec("bool", "bool", 16),
    "md": ArraySpec("float32", "float32", 16),  # small: kept exact
    "md_valid": ArraySpec("float16", "float32", 16),  # multiples of 1/16: exact
    "rgbr": ArraySpec("int16", "float32", 16, scale=2),  # within 0.25 grey levels
    "rgbd": ArraySpec("int16", "float32", 16, scale=2),  # integers (g = 1) exact
    "tvl1": ArraySpec("int16", "float32", 16, scale=32),  # within 1/64 px, up to 1024 px
}


def to_disk(name: str, data: np.ndarray) -> np.ndarray:
    """An array as it is stored (quantised where the spec says so)."""
    spec = ARRAYS[name]
    if spec.scale is None:
        return data.astype(spec.disk_dtype, copy=False)
    limit = np.iinfo(spec.disk_dtype).max
    return np.clip(np.rint(data * spec.scale), -limit, limit).astype(spec.disk_dtype)


def from_disk(name: str, data: np.ndarray) -> np.ndarray:
    """The read API's array (docs/design.md §3 dtype) from what is stored."""
    spec = ARRAYS[name]
    if spec.scale is None:
        return data.astype(spec.read_dtype, copy=False)
    return data.astype(spec.read_dtype) * np.float32(1.0 / spec.scale)


def compressor(dtype: str, level: int = 5) -> BloscCodec:
    """zstd with byte shuffling (bit shuffling for booleans); level 0 stores bytes as they are
    (for the H.264 stream, which zstd cannot shrink)."""
    return BloscCodec(cname="zstd", clevel=level, shuffle="bitshuffle" if dtype == "bool" else "shuffle",
                      typesize=np.dtype(dtype).itemsize)
