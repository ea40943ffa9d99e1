"""`rgb` kept as the canonical H.264 stream itself (`--rgb-codec h264`), decoded when read.

The canonical stream (SPEC section 2) has an IDR frame, with its SPS and PPS in front, every
`gop` frames, and no B-frames, so each GOP decodes on its own and decode order is display
order. A store keeps the stream's access units back to back (`rgb_h264`, bytes) and one row per
frame (`rgb_packets`: byte offset, byte length, frames since its GOP's key frame). A read
decodes from the key frame before the first frame asked for, in process with PyAV's H.264
decoder on one thread: the frames are bit for bit those the cues were computed from.

Decoding also yields each frame's motion vectors, so `rgbr` and `rgbd` (deterministic functions
of the frames and vectors, SPEC section 3) can be computed at read time instead of stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from dvt_prep.decode import frame_type, take_motion_vectors
from dvt_prep.errors import StoreError
from dvt_prep.motion_vectors import reference_distances

OFFSET, NBYTES, SINCE_KEY = 0, 1, 2  # columns of the per-frame packet table


@dataclass(frozen=True)
class EncodedFrames:
    """A video's frames as H.264 access units, what a writer stores for `rgb`.

    data: the stream's bytes; packets: (F, 3) int64 rows (offset, nbytes, frames since the
    GOP's key frame); shape: the decoded frames' (F, H, W, 3).
    """

    data: bytes
    packets: np.ndarray
    shape: tuple[int, int, int, int]

    def __len__(self) -> int:
        return len(self.packets)


def split_stream(stream: bytes, frame_types: str, height: int, width: int) -> EncodedFrames:
    """Cut an Annex-B H.264 stream into its access units, one per frame in decode order.

    frame_types: the decoded frames' types ("I", "P"), one per frame; their count must equal
    the stream's access units. Raises ValueError when the stream does not split that way.
    """
    parser = av.CodecContext.create("h264", "r")
    sizes = [packet.size for packet in parser.parse(stream) + parser.parse(None)]
    if len(sizes) != len(frame_types) or sum(sizes) != len(stream) or \
            (frame_types and frame_types[0] != "I"):
        raise ValueError(f"the stream has {len(sizes)} access units for {len(frame_types)} "
                         "frames; it cannot be stored as --rgb-codec h264")
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    since_key = np.zeros(len(sizes), np.int64)
    for t in range(1, len(sizes)):
        since_key[t] = 0 if frame_types[t] == "I" else since_key[t - 1] + 1
    packets = np.stack([offsets, np.asarray(sizes, np.int64), since_key], axis=1)
    return EncodedFrames(stream, packets, (len(sizes), height, width, 3))


class DecodedGop:
    """Frames [start, start + len(self)) of a video, decoded from a key frame: `rgb(i)` the
    (H, W, 3) uint8 frame (converted on first use), `vectors[i]` its motion vectors ((N, 10)
    int32; None when decoded without them), `past_distance[i]` its reference distance."""

    def __init__(self, start: int, frames: list, vectors: list[np.ndarray] | None,
                 reformatter: VideoReformatter) -> None:
        self.start, self.vectors, self._reformatter = start, vectors, reformatter
        self._frames: list = frames
        self._rgb: list[np.ndarray | None] = [None] * len(frames)
        self.past_distance = [p for p, _ in reference_distances(
            "".join(frame_type(f) for f in frames))]

    def __len__(self) -> int:
        return len(self._frames)

    def rgb(self, i: int) -> np.ndarray:
        if self._rgb[i] is None:
            # = frame.to_ndarray(format="rgb24"), bit for bit; a kept reformatter saves
            # setting up swscale for every frame
            self._rgb[i] = self._reformatter.reformat(self._frames[i], format="rgb24").to_ndarray()
        return self._rgb[i]


class Decoder:
    """An H.264 decoder for `decode_packets`: one thread, motion vectors exported, and the
    RGB converter. One decoder serves any number of GOPs (each starts with an IDR frame, which
    resets it), and reusing it keeps FFmpeg's frame buffers warm."""

    def __init__(self) -> None:
        self.context = av.CodecContext.create("h264", "r")
        self.context.thread_type, self.context.thread_count = "SLICE", 1
        self.context.options = {"flags2": "+export_mvs"}
        self.reformatter = VideoReformatter()


def decode_packets(decoder: Decoder, packets: list[bytes], start: int, *,
                   motion_vectors: bool) -> DecodedGop:
    """Decode access units that begin at a key frame (frame `start` of the video); the
    decoder is left ready for the next GOP."""
    context = decoder.context
    try:
        decoded = [f for data in packets for f in context.decode(av.Packet(data))]
        if len(decoded) < len(packets):  # frames held back: drain, then reset
            decoded += context.decode(None)
            context.flush_buffers()
    except av.FFmpegError as exc:
        context.flush_buffers()
        raise StoreError(f"corrupt rgb stream in the store ({exc}); prep the video again") \
            from None
    if len(decoded) != len(packets):
        raise StoreError(f"the stored rgb stream gave {len(decoded)} frames for "
                         f"{len(packets)}; prep the video again")
    vectors = [take_motion_vectors(frame) for frame in decoded] if motion_vectors else None
    return DecodedGop(start, decoded, vectors, decoder.reformatter)


__all__ = ["DecodedGop", "EncodedFrames", "Decoder", "decode_packets", "split_stream"]
