"""`rgb` kept as the canonical H.264 stream itself (`--rgb-codec h264`), decoded when read.

The canonical stream (docs/design.md §2) has an IDR frame, with its SPS and PPS in front, every
`gop` frames, and no B-frames, so each GOP decodes on its own and decode order is display
order. A store keeps the stream's access units back to back (`rgb_h264`, bytes) and one row per
frame (`rgb_packets`: byte offset, byte length, frames since its GOP's key frame). A read
decodes from the key frame before the first frame asked for, in process with PyAV's H.264
decoder on one thread: the frames are bit for bit those the cues were computed from.

Decoding also yields each frame's motion vectors, so `rgbr` and `rgbd` (deterministic functions
of the frames and vectors, docs/design.md §3) can be computed at read time instead of stored.
"""

from __future__ import annotations

import os
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from dvt_prep import cues as C
from dvt_prep.decode import frame_type, take_motion_vectors
from dvt_prep.errors import StoreError
from dvt_prep.motion_vectors import DST_X, DST_Y, GRID, H, W, rasterize, reference_distances
from dvt_prep.store_format import RGB_STREAM_ARRAYS

BYTES, PACKETS = RGB_STREAM_ARRAYS  # a part's arrays: the streams, the packet table
OFFSET, NBYTES, SINCE_KEY = 0, 1, 2  # columns of the packet table


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
    (H, W, 3) uint8 frame, `vectors(i)` its motion vectors ((N, 10) int32), each taken from
    the decoded frame on first use; `past_distance[i]` its reference distance."""

    def __init__(self, start: int, frames: list, reformatter: VideoReformatter) -> None:
        self.start, self._reformatter = start, reformatter
        self._frames: list = frames
        self._rgb: list[np.ndarray | None] = [None] * len(frames)
        self._vectors: list[np.ndarray | None] = [None] * len(frames)
        self.past_distance = [p for p, _ in reference_distances(
            "".join(frame_type(f) for f in frames))]

    def __len__(self) -> int:
        return len(self._frames)

    def rgb(self, i: int) -> np.ndarray:
        if self._rgb[i] is None:
            # = frame.to_ndarray(format="rgb24"), bit for bit; a kept reformatter saves
            # setting up swscale for every frame. One thread: a kept context with slice
            # threads hangs when a forked child (a DataLoader worker) frees its copy.
            self._rgb[i] = self._reformatter.reformat(self._frames[i], format="rgb24",
                                                      threads=1).to_ndarray()
        return self._rgb[i]

    def vectors(self, i: int) -> np.ndarray:
        if self._vectors[i] is None:
            self._vectors[i] = take_motion_vectors(self._frames[i])
        return self._vectors[i]


class Decoder:
    """An H.264 decoder for `decode_packets`: one thread, motion vectors exported, and the
    RGB converter. One decoder serves any number of GOPs (each starts with an IDR frame, which
    resets it), and reusing it keeps FFmpeg's frame buffers warm."""

    def __init__(self) -> None:
        self.context = av.CodecContext.create("h264", "r")
        self.context.thread_type, self.context.thread_count = "SLICE", 1
        self.context.options = {"flags2": "+export_mvs"}
        self.reformatter = VideoReformatter()


def decode_packets(decoder: Decoder, packets: list[bytes], start: int) -> DecodedGop:
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
    return DecodedGop(start, decoded, decoder.reformatter)


Box = tuple[int, int, int, int]  # (y0, y1, x0, x1) in stored pixels
ReadRows = Callable[[str, str, int, int], np.ndarray]  # (part, array, start, stop) -> rows


class StreamReader:
    """rgb decoded from a store's H.264 streams, and rgbr / rgbd computed from them, for one
    open store (one decoder, the last four GOPs kept).

    read_rows: a weak method (the store's, so that the store is freed as soon as it is
    dropped) giving read_rows(part, array name, start, stop), rows of a part's array as
    stored. Video entries are the store's: offset and num_frames into the part, stored_size,
    cue_grid, computed.
    """

    def __init__(self, read_rows: Callable[[], ReadRows]) -> None:
        self._read_rows = read_rows
        self._gops: OrderedDict[tuple[str, int], DecodedGop] = OrderedDict()  # newest last
        self._decoder: Decoder | None = None  # made on the first read
        _READERS.add(self)

    def _forget_after_fork(self) -> None:
        """In a forked child: never free the parent's decoder and frames here (FFmpeg objects
        that had threads in the parent can hang when freed in a child); start afresh."""
        _INHERITED.append((self._decoder, self._gops))
        self._decoder, self._gops = None, OrderedDict()

    def read(self, part: str, entry: dict, cue: str, frames: list[int],
             box: Box | None = None) -> np.ndarray:
        """rgb decoded from the stored stream, or rgbr / rgbd computed from it, at `frames`
        (sorted, in range): (len(frames), ...) in docs/design.md §3's dtype. With a `box`, only
        the cells (pixels for rgb) within one cell of it are filled, the rest are zero."""
        height, width = entry["stored_size"][1], entry["stored_size"][0]
        if cue == "rgb":
            if not frames:
                return np.zeros((0, height, width, 3), np.uint8)
            decoded = self._decoded(part, entry, frames[0], frames[-1] + 1)
            if box is None:
                return np.stack([_rgb(decoded(t)) for t in frames])
            y0, y1, x0, x1 = box  # and one pixel around it, as for the cells below
            window = np.s_[max(0, y0 - 1): y1 + 1, max(0, x0 - 1): x1 + 1]
            out = np.zeros((len(frames), height, width, 3), np.uint8)
            for k, t in enumerate(frames):
                out[k][window] = _rgb(decoded(t))[window]
            return out
        g = entry["cue_grid"]
        cells_h, cells_w = -(-height // g), -(-width // g)
        out = np.zeros((len(frames), cells_h, cells_w, 3), np.float32)
        wanted = [(k, t) for k, t in enumerate(frames) if t > 0]  # frame 0: zeros
        if not wanted:
            return out
        y0, y1, x0, x1 = (0, height, 0, width) if box is None else box
        cells = (max(0, y0 // g - 1), min(cells_h, -(-y1 // g) + 1),
                 max(0, x0 // g - 1), min(cells_w, -(-x1 // g) + 1))
        window = np.s_[cells[0]:cells[1], cells[2]:cells[3]]
        decoded = self._decoded(part, entry, wanted[0][1] - 1, frames[-1] + 1)
        if cue == "rgbd":
            for k, t in wanted:
                out[k][window] = C.difference(_rgb(decoded(t)), _rgb(decoded(t - 1)), g, cells)
            return out
        # (canonical sizes are multiples of 16; other sizes take the whole-frame route)
        whole = bool(height % max(g, GRID) or width % max(g, GRID))
        motion = [(gop.vectors(i), gop.past_distance[i]) for gop, i in
                  (decoded(t) for _, t in wanted)]
        fields, origin = _fields(motion, height, width, None if whole else [v * g for v in cells])
        for (k, t), field in zip(wanted, fields, strict=True):
            value = C.residual(_rgb(decoded(t)), _rgb(decoded(t - 1)), field, g,
                               None if whole else cells, origin)
            out[k][window] = value[window] if whole else value
        return out

    def _decoded(self, part: str, entry: dict, start: int, stop: int):
        """Decode frames [start, stop) of a video from its stream (from the key frame before
        `start`, one GOP at a time, the last few GOPs kept); returns frame t -> (its GOP,
        its index there)."""
        offset = entry["offset"]
        rows = self._read_rows()(part, PACKETS, offset + start, offset + stop)
        key_frames = [start - int(rows[0, SINCE_KEY])] + \
            [start + i for i in np.flatnonzero(rows[:, SINCE_KEY] == 0) if i > 0]
        gops = []
        for index, key in enumerate(key_frames):
            end = key_frames[index + 1] if index + 1 < len(key_frames) else stop
            cached = self._gops.get((part, offset + key))
            if cached is None or cached.start + len(cached) < end:
                cached = self._decode_gop(part, offset, key, end)
                self._gops[(part, offset + key)] = cached
                while len(self._gops) > 4:
                    self._gops.popitem(last=False)
            self._gops.move_to_end((part, offset + key))
            gops.append(cached)

        def frame(t: int) -> tuple[DecodedGop, int]:
            gop = next(g for g in reversed(gops) if g.start <= t)
            return gop, t - gop.start
        return frame

    def _decode_gop(self, part: str, offset: int, key: int, end: int) -> DecodedGop:
        rows = self._read_rows()(part, PACKETS, offset + key, offset + end)
        first = int(rows[0, OFFSET])
        data = self._read_rows()(part, BYTES, first,
                               int(rows[-1, OFFSET] + rows[-1, NBYTES])).tobytes()
        packets = [data[o - first: o - first + n] for o, n, _ in rows.tolist()]
        if self._decoder is None:
            self._decoder = Decoder()
        return decode_packets(self._decoder, packets, key)


_READERS: weakref.WeakSet[StreamReader] = weakref.WeakSet()
_INHERITED: list = []  # what forked children inherited, kept for good


def _after_fork_in_child() -> None:
    for reader in list(_READERS):
        reader._forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _rgb(frame: tuple[DecodedGop, int]) -> np.ndarray:
    gop, i = frame
    return gop.rgb(i)



def _fields(frames: list[tuple[np.ndarray, int | None]], height: int, width: int,
            pixels: list[int] | None) -> tuple[list[np.ndarray], tuple[int, int]]:
    """The 4x4-grid displacement of each frame from its (motion vectors, past reference
    distance), over the whole frame, or over the 4x4-aligned block around `pixels` (y0, y1,
    x0, x1) only; and the grid cell (y, x) where the fields start.

    One `rasterize` per reference distance for all frames: they are stacked one above the
    other, each in a slot with 16 spare rows below it, which take whatever part of a block
    hangs over the block's lower or upper edge (blocks are at most 16 pixels tall).
    """
    y0, y1, x0, x1 = pixels or (0, height, 0, width)
    y0, x0, y1 = y0 // GRID * GRID, x0 // GRID * GRID, -(-y1 // GRID) * GRID
    slot = y1 - y0 + 16
    fields: list[np.ndarray | None] = [None] * len(frames)
    for distance in {d for _, d in frames}:
        chosen = [i for i, (_, d) in enumerate(frames) if d == distance]
        stacked = []
        for row, i in enumerate(chosen):
            vectors = _vectors_over(frames[i][0], (y0, y1, x0, x1)).copy()
            vectors[:, DST_X] -= x0
            vectors[:, DST_Y] += row * slot - y0
            stacked.append(vectors)
        grid, _ = rasterize(np.concatenate(stacked), len(chosen) * slot, x1 - x0,
                            past_distance=distance)
        for row, i in enumerate(chosen):
            fields[i] = grid[row * slot // GRID: (row * slot + y1 - y0) // GRID]
    return fields, ((y0 // GRID, x0 // GRID) if pixels else (0, 0))


def _vectors_over(vectors: np.ndarray, pixels: tuple[int, int, int, int]) -> np.ndarray:
    """The motion vectors whose blocks overlap the pixels (y0, y1, x0, x1): all that
    `rasterize` needs for the displacement there."""
    y0, y1, x0, x1 = pixels
    left = vectors[:, DST_X] - vectors[:, W] // 2
    top = vectors[:, DST_Y] - vectors[:, H] // 2
    keep = (left < x1) & (left + vectors[:, W] > x0) & (top < y1) & \
        (top + vectors[:, H] > y0)
    return vectors[keep]


__all__ = ["BYTES", "PACKETS", "DecodedGop", "Decoder", "EncodedFrames", "StreamReader",
           "decode_packets", "split_stream"]
