"""Writing a store: videos buffered and written as parts, each committed by its attributes
(the layout: store_layout.py)."""

from __future__ import annotations

import os
import secrets
import time

import numpy as np
import zarr
from zarr.codecs import BytesCodec

from dvt_prep.codecs import JpegCodec
from dvt_prep.errors import StoreError
from dvt_prep.rgb_stream import EncodedFrames
from dvt_prep.store_format import ARRAYS, RGB_CODECS, RGB_STREAM_ARRAYS, compressor, to_disk
from dvt_prep.store_layout import PARTS, create_store


class StoreWriter:
    """Adds videos to a store (creating it if needed); buffers them and writes parts.

    One writer belongs to one process. Call `add_video` for each finished video, then `close`
    (or use it as a context manager); videos become visible when their part is flushed.
    """

    def __init__(self, path: str | os.PathLike, *, rgb_codec: str = "h264",
                 jpeg_quality: int = 95, part_frames: int = 512) -> None:
        if rgb_codec not in RGB_CODECS:
            raise StoreError(f"unknown rgb codec {rgb_codec!r}; use one of {', '.join(RGB_CODECS)}")
        self.path = os.fspath(path)
        self.rgb_codec, self.jpeg_quality, self.part_frames = rgb_codec, jpeg_quality, part_frames
        self._root = create_store(self.path)
        self._pending: list[tuple[str, dict[str, np.ndarray], dict]] = []
        self._pending_failures: dict[str, str] = {}

    def add_video(self, video_id: str, arrays: dict[str, np.ndarray | EncodedFrames],
                  meta: dict) -> None:
        """Queue a finished video: arrays by name (section 3 shapes; `rgb` may be its
        EncodedFrames), JSON-able metadata."""
        lengths = {name: len(array) for name, array in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"{video_id}: arrays differ in frame count: {lengths}")
        self._pending.append((video_id, arrays, meta))
        self._pending_failures.pop(video_id, None)
        if sum(len(next(iter(a.values()))) for _, a, _ in self._pending) >= self.part_frames:
            self.flush()

    def add_failure(self, video_id: str, reason: str) -> None:
        """Record that a video failed, with its one-line reason."""
        self._pending_failures[video_id] = reason

    def flush(self) -> None:
        """Write every queued video and failure to new parts and commit them."""
        groups: dict[tuple, list] = {}
        for video_id, arrays, meta in self._pending:
            layout = tuple(sorted((name, array.shape[1:]) for name, array in arrays.items()))
            groups.setdefault(layout, []).append((video_id, arrays, meta))
        failures, self._pending, self._pending_failures = self._pending_failures, [], {}
        for index, videos in enumerate(groups.values()):
            self._write_part(videos, failures if index == 0 else {})
        if failures and not groups:
            self._write_part([], failures)

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write_part(self, videos: list, failures: dict[str, str]) -> None:
        name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            group = self._root[PARTS].create_group(name)
            entries: dict[str, dict] = {}
            offset = 0
            for video_id, arrays, meta in videos:
                frames = len(next(iter(arrays.values())))
                entries[video_id] = {**meta, "offset": offset, "num_frames": frames}
                offset += frames
            if videos:
                for array_name, first in videos[0][1].items():
                    values = [arrays[array_name] for _, arrays, _ in videos]
                    if isinstance(first, EncodedFrames):
                        self._write_stream(group, values)
                    else:
                        self._write_array(group, array_name, np.concatenate(values))
            group.attrs.update({"videos": entries, "failures": failures})  # the commit
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot write the store ({exc.strerror or exc}); "
                             "check free space and permissions") from None

    def _write_stream(self, group: zarr.Group, videos: list[EncodedFrames]) -> None:
        """The videos' H.264 streams back to back, and their packet tables with offsets into
        the part's bytes."""
        starts = np.cumsum([0] + [len(v.data) for v in videos[:-1]])
        packets = np.concatenate([v.packets + [start, 0, 0]
                                  for v, start in zip(videos, starts, strict=True)])
        data = np.frombuffer(b"".join(v.data for v in videos), np.uint8)
        self._write_array(group, RGB_STREAM_ARRAYS[0], data, level=0)
        self._write_array(group, RGB_STREAM_ARRAYS[1], packets)

    def _write_array(self, group: zarr.Group, name: str, data: np.ndarray,
                     level: int = 5) -> None:
        spec = ARRAYS[name]
        data = to_disk(name, data)
        per_chunk = max(1, min(spec.frames_per_chunk, len(data)))
        chunks = (per_chunk, *data.shape[1:])
        shards = (max(1, -(-len(data) // per_chunk)) * per_chunk, *data.shape[1:])
        if name == "rgb" and self.rgb_codec == "jpeg":
            serializer, compressors = JpegCodec(quality=self.jpeg_quality), None
        else:
            serializer, compressors = BytesCodec(), compressor(spec.disk_dtype, level)
        array = group.create_array(name, shape=data.shape, dtype=spec.disk_dtype, chunks=chunks,
                                   shards=shards, serializer=serializer, compressors=compressors,
                                   fill_value=0)
        array[...] = data
