"""The canonical re-encode of docs/design.md §2, in process with PyAV's libx264.

Every video is resized so that its short side is `size` (long side rounded to a multiple of 16),
optionally resampled to a constant frame rate, and encoded with no B-frames, one reference frame
and an I-frame every `gop` frames exactly, so that every P-frame vector points one frame back.

Determinism: x264 reads whole rows of the planes it is given, padding included, and frames that
swscale or `from_ndarray` allocate leave that padding uninitialised. We build each frame to
encode ourselves and fill every byte of its planes (padding replicates the last column), and run
x264 with one thread, so the same input gives the same bytes in any process.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import av
import numpy as np

from dvt_prep.decode import PathOrFile, VideoInfo, iter_av_frames, probe
from dvt_prep.errors import InputError, VideoError


@dataclass(frozen=True)
class EncodeSettings:
    """Canonical encoding parameters (docs/design.md §2). size in pixels (multiple of 16)."""

    size: int = 256
    fps: float | None = None  # None keeps the source's frames as they are
    gop: int = 16
    crf: int = 23
    preset: str = "superfast"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise InputError (one line) for parameters no video can be encoded with."""
        if self.size <= 0 or self.size % 16:
            raise InputError(f"size must be a positive multiple of 16, got {self.size}")
        if self.gop < 1:
            raise InputError(f"gop must be at least 1, got {self.gop}")
        if self.fps is not None and self.fps <= 0:
            raise InputError(f"fps must be positive, got {self.fps}")

    def as_dict(self) -> dict:
        return asdict(self)


def canonical_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) with the short side `size` and the long side rounded to a multiple of 16."""
    short, long = min(width, height), max(width, height)
    long_out = max(16, int(round(long * size / short / 16)) * 16)
    return (long_out, size) if width >= height else (size, long_out)


def _resampled(frames: Iterator, fps: float | None) -> Iterator:
    """Pick, for each output time k / fps, the last source frame shown at or before it."""
    if fps is None:
        yield from frames
        return
    next_time, previous = 0.0, None
    for index, frame in enumerate(frames):
        time_s = float(frame.time) if frame.time is not None else index / fps
        while previous is not None and next_time < time_s - 1e-9:
            yield previous
            next_time += 1.0 / fps
        previous = frame
    if previous is not None and next_time <= float(previous.time or 0.0) + 1e-9:
        yield previous


def _canonical_frame(frame: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """`frame` resized to (width, height) yuv420p, in a new frame with every plane byte set."""
    yuv = frame.reformat(width=width, height=height, format="yuv420p",
                         interpolation="AREA").to_ndarray()  # (H * 3 / 2, W), visible bytes only
    frame = av.VideoFrame(width, height, "yuv420p")
    planes = (yuv[:height], yuv[height:height + height // 4].reshape(height // 2, width // 2),
              yuv[height + height // 4:].reshape(height // 2, width // 2))
    for plane, data in zip(frame.planes, planes, strict=True):
        memory = np.frombuffer(plane, np.uint8)
        rows = memory[: plane.line_size * data.shape[0]].reshape(data.shape[0], plane.line_size)
        rows[:, : data.shape[1]] = data
        rows[:, data.shape[1]:] = data[:, -1:]
        memory[plane.line_size * data.shape[0]:] = 0
    return frame


def encode_canonical(source: PathOrFile, settings: EncodeSettings = EncodeSettings(), *,
                     info: VideoInfo | None = None) -> bytes:
    """Re-encode the first video stream of `source` to a canonical H.264 Annex-B stream.

    info: the source's probe, when the caller already has it.
    Returns the stream's bytes (decode them with format="h264").
    Raises VideoError (one line) when the source cannot be decoded or has no frames.
    """
    info = info or probe(source)
    if info.width <= 0 or info.height <= 0:
        raise VideoError(f"{source}: video stream has no size; check the file")
    width, height = canonical_size(info.width, info.height, settings.size)
    rate = settings.fps or info.fps or 25.0
    buffer = io.BytesIO()
    output = av.open(buffer, mode="w", format="h264")
    try:
        stream = output.add_stream("libx264", rate=max(1, round(rate)))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.thread_count = 1
        stream.options = {
            "crf": str(settings.crf),
            "preset": settings.preset,
            "x264-params": (f"bframes=0:ref=1:keyint={settings.gop}:min-keyint={settings.gop}"
                            ":scenecut=0:threads=1:lookahead-threads=1:sliced-threads=0"),
        }
        count = 0
        for frame in _resampled(iter_av_frames(source), settings.fps):
            for packet in stream.encode(_canonical_frame(frame, width, height)):
                output.mux(packet)
            count += 1
        for packet in stream.encode(None):
            output.mux(packet)
    except av.FFmpegError as exc:
        raise VideoError(f"{source}: re-encoding failed ({exc}); try --no-reencode") from None
    finally:
        output.close()
    if count == 0:
        raise VideoError(f"{source}: no decodable frames; re-download or remove the file")
    return buffer.getvalue()


__all__ = ["EncodeSettings", "canonical_size", "encode_canonical"]
