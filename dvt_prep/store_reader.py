"""Reading a store: video ids, per-video metadata and cue arrays (docs/design.md §4; the
layout: store_layout.py). Stored arrays are read straight from their shard files on a local
disk; rgb kept as H.264, and rgbr / rgbd computed from it, come from rgb_stream.py."""

from __future__ import annotations

import os
import weakref

import numpy as np
import zarr

from dvt_prep.errors import StoreError
from dvt_prep.rgb_stream import Box, StreamReader
from dvt_prep.shard_read import ShardFile
from dvt_prep.store_format import ARRAYS, RGB_STREAM_ARRAYS, from_disk
from dvt_prep.store_layout import (
    PARTS,
    SUMMARY_KEYS,
    SUMMARY_ONLY,
    open_root,
    part_attributes,
    part_names,
    read_index,
)


class Store:
    """Read access to a store: video ids, per-video metadata and cue arrays."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self._root = open_root(self.path, create=False)
        self._arrays: dict[tuple[str, str], zarr.Array] = {}
        self._shard_files: dict[tuple[str, str], ShardFile | None] = {}
        self._stream = StreamReader(weakref.WeakMethod(self._rows))  # no cycle: freed at once
        self.refresh()

    def refresh(self) -> None:
        """Re-read which parts are committed (for a store that is being written).

        Parts listed in the consolidated index (`index.json`, written by `consolidate`) are
        taken from it; only newer parts have their attributes read one by one.
        """
        videos: dict[str, tuple[str, dict]] = {}
        failures: dict[str, str] = {}
        parts = self._root.get(PARTS)
        names = part_names(self.path, parts)
        indexed = read_index(self.path)
        self._full_attrs: dict[str, dict] = {}
        self.uncommitted_parts = 0
        for name in names:  # oldest first, so newer parts overwrite
            attrs = indexed.get(name) or part_attributes(parts, name)
            if attrs is None:
                self.uncommitted_parts += 1
                continue
            for video_id, entry in attrs["videos"].items():
                videos[video_id] = (name, entry)
            failures.update(attrs.get("failures", {}))
        self._videos = videos
        self._failures = {k: v for k, v in failures.items() if k not in videos}
        self.num_parts = len(names)

    @property
    def video_ids(self) -> list[str]:
        """Ids of the complete videos, sorted."""
        return sorted(self._videos)

    @property
    def failures(self) -> dict[str, str]:
        """Videos whose last attempt failed and that are not in the store: id -> reason."""
        return dict(self._failures)

    def __contains__(self, video_id: str) -> bool:
        return video_id in self._videos

    def __len__(self) -> int:
        return len(self._videos)

    def meta(self, video_id: str) -> dict:
        """Per-video metadata (docs/design.md §4) as a new dict."""
        part, entry = self._entry(video_id)
        if entry.get(SUMMARY_ONLY):  # from the index: the part's attributes have the rest
            if part not in self._full_attrs:
                self._full_attrs[part] = part_attributes(self._root[PARTS], part) or {}
            entry = self._full_attrs[part].get("videos", {}).get(video_id, entry)
        return {k: v for k, v in entry.items() if k not in ("offset", SUMMARY_ONLY)}

    def summary(self, video_id: str) -> dict:
        """What readers need at scale without the part's attributes: num_frames, arrays,
        stored_size (a subset of `meta`)."""
        entry = self._entry(video_id)[1]
        return {k: entry[k] for k in SUMMARY_KEYS if k in entry}

    def cues(self, video_id: str) -> list[str]:
        """Names of the arrays stored for a video (cues and their validity arrays)."""
        return list(self._entry(video_id)[1]["arrays"])

    def read(self, video_id: str, cue: str, start: int | None = None, stop: int | None = None,
             *, box: Box | None = None) -> np.ndarray:
        """Frames [start, stop) of one cue, in the dtype and shape of docs/design.md §3.

        box: (y0, y1, x0, x1) stored pixels that the caller will use. A cue read from an
        H.264 store (rgb decoded, rgbr and rgbd computed) then has only the cells (pixels for
        rgb) within one cell of it filled, and zeros elsewhere; stored cues come whole.
        """
        part, entry = self._cue_part(video_id, cue)
        first, last, _ = slice(start, stop).indices(entry["num_frames"])
        if _from_stream(entry, cue):
            return self._stream.read(part, entry, cue, list(range(first, max(first, last))), box)
        offset = entry["offset"]
        return from_disk(cue, self._rows(part, cue, offset + first, offset + max(first, last)))

    def read_frames(self, video_id: str, cue: str, frames: list[int], *,
                    box: Box | None = None) -> np.ndarray:
        """The given frames (sorted, in range) of one cue in one read: (len(frames), ...).
        box: as in `read`."""
        part, entry = self._cue_part(video_id, cue)
        if frames and (min(frames) < 0 or max(frames) >= entry["num_frames"]):
            raise StoreError(f"{self.path}: frames {min(frames)}..{max(frames)} are outside "
                             f"video {video_id!r} ({entry['num_frames']} frames)")
        if _from_stream(entry, cue):
            return self._stream.read(part, entry, cue, list(frames), box)
        offset = entry["offset"]
        if not frames:
            return from_disk(cue, self._rows(part, cue, offset, offset))
        # One read over the span when it is dense, else one per frame. (Through zarr: slices,
        # not orthogonal indexing, which is about ten times slower on a sharded array.)
        first, last = min(frames), max(frames)
        if last - first + 1 <= 2 * len(frames):
            block = self._rows(part, cue, offset + first, offset + last + 1)
            return from_disk(cue, block[[f - first for f in frames]])
        return from_disk(cue, np.concatenate([self._rows(part, cue, offset + f, offset + f + 1)
                                              for f in frames]))

    def nbytes(self) -> dict[str, int]:
        """Bytes on disk per array name, summed over parts (local stores only); the H.264
        stream and its packet table count as `rgb`."""
        totals: dict[str, int] = {}
        parts_dir = os.path.join(self.path, PARTS)
        for part in os.listdir(parts_dir) if os.path.isdir(parts_dir) else []:
            for array_name in ARRAYS:
                folder = os.path.join(parts_dir, part, array_name)
                name = "rgb" if array_name in RGB_STREAM_ARRAYS else array_name
                for dirpath, _, files in os.walk(folder):
                    if files:
                        totals[name] = totals.get(name, 0) + sum(
                            os.path.getsize(os.path.join(dirpath, f)) for f in files)
        return totals

    def _entry(self, video_id: str) -> tuple[str, dict]:
        try:
            return self._videos[video_id]
        except KeyError:
            raise StoreError(f"{self.path}: no video {video_id!r} in the store; "
                             "`dvt inspect` lists what is there") from None

    def _cue_part(self, video_id: str, cue: str) -> tuple[str, dict]:
        part, entry = self._entry(video_id)
        if cue not in entry["arrays"]:
            raise StoreError(f"{self.path}: video {video_id!r} has no cue {cue!r} "
                             f"(it has {', '.join(entry['arrays'])}); prep it with --cues {cue}")
        return part, entry

    def _array(self, part: str, name: str) -> zarr.Array:
        key = (part, name)
        if key not in self._arrays:
            self._arrays[key] = self._root[f"{PARTS}/{part}/{name}"]
        return self._arrays[key]

    def _rows(self, part: str, name: str, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of a part's array, as stored: straight from the shard file on a
        local disk (`ShardFile`), through zarr otherwise."""
        key = (part, name)
        if key not in self._shard_files:
            folder = os.path.join(self.path, PARTS, part, name)
            self._shard_files[key] = (ShardFile.open(self._array(part, name), folder)
                                      if os.path.isdir(folder) else None)
        shard = self._shard_files[key]
        if shard is None:
            return self._array(part, name)[start:stop]
        return shard.read(start, stop)


def _from_stream(entry: dict, cue: str) -> bool:
    """The cue is decoded or computed from the video's stored H.264 stream."""
    return entry.get("rgb_codec") == "h264" and (cue == "rgb" or cue in entry.get("computed", ()))


def open_store(path: str | os.PathLike, mode: str = "r") -> Store:
    """Open a store for reading (docs/design.md §4). Only mode "r" is supported."""
    if mode != "r":
        raise ValueError("open_store is read-only; write with dvt_prep.store.StoreWriter")
    return Store(path)
