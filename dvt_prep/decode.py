"""Decoding with PyAV, in process: open a video, probe it, iterate frames with their motion vectors.

Threading: frames are decoded with slice threading and one thread by default. Frame threading
returns B-frame motion vectors that change from run to run, and dvt parallelises across videos.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import IO, Any

import av
import numpy as np

from dvt_prep.errors import VideoError

PathOrFile = str | os.PathLike | IO[bytes]
# Reading a frame's side data makes a reference cycle in PyAV (the frame caches its side-data
# container, which points back at the frame), so such frames, and the decoder's picture buffers
# they hold, live until a full garbage collection. PyAV has no public way to break the cycle, so
# while motion vectors are exported, objects older than the decode are frozen (gc.freeze: a full
# collection then only visits what the decode made, which is cheap) and every
# COLLECT_EVERY frames a full collection frees the frames the caller has dropped.
COLLECT_EVERY = 8

# AVMotionVector as laid out by FFmpeg (libavutil/motion_vector.h), natural alignment.
_AV_MOTION_VECTOR = np.dtype(
    [
        ("source", "<i4"),
        ("w", "u1"),
        ("h", "u1"),
        ("src_x", "<i2"),
        ("src_y", "<i2"),
        ("dst_x", "<i2"),
        ("dst_y", "<i2"),
        ("flags", "<u8"),
        ("motion_x", "<i4"),
        ("motion_y", "<i4"),
        ("motion_scale", "<u2"),
    ],
    align=True,
)
# mv-extractor's column order (docs/design.md §4); `flags` is left out.
MV_COLUMNS = (
    "source", "w", "h", "src_x", "src_y", "dst_x", "dst_y", "motion_x", "motion_y", "motion_scale",
)
_PICT_TYPES = {1: "I", 2: "P", 3: "B", 4: "S", 5: "i", 6: "p", 7: "b"}


@dataclass(frozen=True)
class VideoInfo:
    """What a probe of a video stream says. Sizes in pixels, fps in frames per second."""

    codec: str
    width: int
    height: int
    fps: float
    num_frames: int  # as the container states it; 0 when unknown
    duration_s: float
    has_audio: bool


def _name(source: PathOrFile) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<in-memory stream>"


@contextmanager
def open_video(source: PathOrFile, *, format: str | None = None) -> Iterator[Any]:
    """Open a container for reading; every FFmpeg failure becomes one clear VideoError."""
    name = _name(source)
    if isinstance(source, (str, os.PathLike)):
        if not os.path.exists(source):
            raise VideoError(f"{name}: no such file; check the path")
        if os.path.isdir(source):
            raise VideoError(f"{name}: is a directory, not a video file")
        if os.path.getsize(source) == 0:
            raise VideoError(f"{name}: empty file (0 bytes); re-download or remove it")
    try:
        container = av.open(source if not isinstance(source, os.PathLike) else os.fspath(source),
                            format=format)
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise VideoError(f"{name}: not a readable video ({_short(exc)}); check the file") from None
    try:
        if not container.streams.video:
            raise VideoError(f"{name}: has no video stream")
        yield container
    finally:
        container.close()


def _short(exc: BaseException) -> str:
    """FFmpeg's reason without its errno and file name."""
    text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def probe(source: PathOrFile) -> VideoInfo:
    """Codec, size, frame rate and length of the first video stream, without decoding."""
    with open_video(source) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(0)
        duration = float(stream.duration * stream.time_base) if stream.duration else (
            container.duration / av.time_base if container.duration else 0.0)
        return VideoInfo(
            codec=stream.codec_context.name,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=float(rate),
            num_frames=int(stream.frames or 0),
            duration_s=duration,
            has_audio=bool(container.streams.audio),
        )


def iter_av_frames(
    source: PathOrFile,
    *,
    motion_vectors: bool = False,
    format: str | None = None,
    threads: int = 1,
) -> Iterator[Any]:
    """Decode the first video stream in display order, yielding PyAV VideoFrames.

    Raises VideoError with one line when the file cannot be opened or is corrupt part way.
    """
    name = _name(source)
    with open_video(source, format=format) as container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        stream.thread_count = threads
        if motion_vectors:
            stream.codec_context.options = {"flags2": "+export_mvs"}
        froze = motion_vectors and gc.get_freeze_count() == 0  # a caller's freeze stays theirs
        if froze:
            gc.freeze()
        try:
            for index, frame in enumerate(container.decode(stream)):
                yield frame
                if motion_vectors and index % COLLECT_EVERY == COLLECT_EVERY - 1:
                    del frame
                    gc.collect()
        except av.FFmpegError as exc:
            raise VideoError(f"{name}: corrupt video data ({_short(exc)}); re-encode or "
                             "remove the file") from None
        finally:
            if froze:
                gc.unfreeze()


def frame_type(frame: Any) -> str:
    """FFmpeg's picture type of a decoded frame: "I", "P", "B" (or "?")."""
    return _PICT_TYPES.get(int(frame.pict_type), "?")


_EMPTY_MVS = np.zeros((0, len(MV_COLUMNS)), np.int32)


def take_motion_vectors(frame: Any) -> np.ndarray:
    """The frame's MOTION_VECTORS side data, copied out as (N, 10) int32."""
    vectors = frame.side_data.get(av.sidedata.sidedata.Type.MOTION_VECTORS)
    if vectors is None:
        return _EMPTY_MVS.copy()
    return _records_to_columns(np.frombuffer(vectors, np.uint8))


def _records_to_columns(raw: np.ndarray) -> np.ndarray:
    """AVMotionVector records (raw bytes) to (N, 10) int32.

    Built column by column in a (10, N) array and returned transposed (Fortran order): each copy
    then writes contiguous memory, which halves the conversion time.
    """
    records = raw[: raw.size - raw.size % _AV_MOTION_VECTOR.itemsize].view(_AV_MOTION_VECTOR)
    columns = np.empty((len(MV_COLUMNS), len(records)), np.int32)
    for index, field in enumerate(MV_COLUMNS):
        columns[index] = records[field]
    return columns.T
