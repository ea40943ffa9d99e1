"""The zarr v3 store of cues: layout, writing and the read API (docs/design.md §4).

Layout (one hierarchy, many videos):

    STORE/zarr.json                 root group; attributes {"dvt_store": {"layout": 1, ...}}
    STORE/parts/<part>/             one group per flush of one writer, written once, never edited
    STORE/parts/<part>/<array>      (F, ...) the frames of all the part's videos, back to back;
                                    one shard per array, so one file per cue and part
    STORE/parts/<part>/rgb_h264     with --rgb-codec h264: the videos' canonical H.264 streams
    STORE/parts/<part>/rgb_packets  back to back, and (F, 3) per frame: byte offset, byte
                                    length, frames since the GOP's key frame (rgb_stream.py)

The root attributes record the settings the store was made with (`prepare_store`); a run with
other settings stops before it writes anything.

A part is committed when its group attributes list its videos (`videos`: id -> metadata with
`offset` and `num_frames` into the part's arrays); that attribute is written last, by an atomic
file replace. Readers ignore parts without it, so a crash at any moment leaves every video whole
or absent, and several processes can write at once without ever sharing a shard. Video ids are
never turned into paths. When a video is in several parts, the newest part wins.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
import weakref

import numpy as np
import zarr
import zarr.errors
from zarr.codecs import BytesCodec

from dvt_prep.codecs import JpegCodec
from dvt_prep.errors import StoreError
from dvt_prep.rgb_stream import Box, EncodedFrames, StreamReader
from dvt_prep.shard_read import ShardFile
from dvt_prep.store_format import (
    ARRAYS,
    RGB_CODECS,
    RGB_STREAM_ARRAYS,
    compressor,
    from_disk,
    to_disk,
)

LAYOUT = 1
PARTS = "parts"


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


class Store:
    """Read access to a store: video ids, per-video metadata and cue arrays."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self._root = _open_root(self.path, create=False)
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
        names = _part_names(self.path, parts)
        indexed = _read_index(self.path)
        self._full_attrs: dict[str, dict] = {}
        self.uncommitted_parts = 0
        for name in names:  # oldest first, so newer parts overwrite
            attrs = indexed.get(name) or _part_attributes(parts, name)
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
        if entry.get(_SUMMARY):  # from the index: the part's attributes have the rest
            if part not in self._full_attrs:
                self._full_attrs[part] = _part_attributes(self._root[PARTS], part) or {}
            entry = self._full_attrs[part].get("videos", {}).get(video_id, entry)
        return {k: v for k, v in entry.items() if k not in ("offset", _SUMMARY)}

    def summary(self, video_id: str) -> dict:
        """What readers need at scale without the part's attributes: num_frames, arrays,
        stored_size (a subset of `meta`)."""
        entry = self._entry(video_id)[1]
        return {k: entry[k] for k in _SUMMARY_KEYS if k in entry}

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


INDEX = "index.json"
_SUMMARY = "summary_only"
_SUMMARY_KEYS = ("num_frames", "arrays", "stored_size", "offset", "rgb_codec", "computed",
                 "cue_grid", "source_bytes")


def _from_stream(entry: dict, cue: str) -> bool:
    """The cue is decoded or computed from the video's stored H.264 stream."""
    return entry.get("rgb_codec") == "h264" and (cue == "rgb" or cue in entry.get("computed", ()))


def _part_names(path: str, parts: zarr.Group | None) -> list[str]:
    """Part names, sorted (= oldest first). A local store lists its folder: zarr's
    `group_keys()` reads every child's metadata, one file per part."""
    if parts is None:
        return []
    if "://" not in path:
        folder = os.path.join(path, PARTS)
        return sorted(name for name in os.listdir(folder)
                      if os.path.isfile(os.path.join(folder, name, "zarr.json")))
    return sorted(parts.group_keys())


def _read_index(path: str) -> dict[str, dict]:
    """part name -> its attributes in summary form, from the consolidated index (if any)."""
    if "://" in path:
        return {}
    try:
        with open(os.path.join(path, INDEX), encoding="utf-8") as handle:
            index = json.load(handle)
        return index["parts"] if index.get("layout") == LAYOUT else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # no index, or a damaged one: read the parts themselves


def consolidate(path: str | os.PathLike) -> int:
    """Write the consolidated index of a local store: every committed part's videos in summary
    form (offset, frames, arrays, size) and failures, so that opening a store of many thousand
    parts reads one file instead of one per part. Parts are immutable once committed, so the
    index never goes stale; parts written later are read one by one until the next
    consolidation. Atomic (write, then rename). Returns the number of parts indexed."""
    path = os.fspath(path)
    if "://" in path:
        return 0
    root = _open_root(path, create=False)
    parts = root.get(PARTS)
    indexed = _read_index(path)
    out = {}
    for name in _part_names(path, parts):
        attrs = indexed.get(name) or _part_attributes(parts, name)
        if attrs is None:
            continue  # not committed (yet, or a crashed writer's)
        out[name] = {"videos": {v: {**{k: e[k] for k in _SUMMARY_KEYS if k in e}, _SUMMARY: True}
                                for v, e in attrs["videos"].items()},
                     "failures": attrs.get("failures", {})}
    temporary = os.path.join(path, f".{INDEX}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump({"layout": LAYOUT, "parts": out}, handle, separators=(",", ":"))
    os.replace(temporary, os.path.join(path, INDEX))
    return len(out)


def _part_attributes(parts: zarr.Group, name: str) -> dict | None:
    try:
        attrs = dict(parts[name].attrs)
    except (KeyError, ValueError, json.JSONDecodeError, OSError):
        return None
    return attrs if isinstance(attrs.get("videos"), dict) else None


def _open_root(path: str, *, create: bool, settings: dict | None = None) -> zarr.Group:
    from dvt_prep import __version__

    if not create and not os.path.exists(path) and "://" not in path:
        raise StoreError(f"{path}: no such store; create it with `dvt prep ... -o {path}`")
    try:
        if create:
            if "://" not in path:
                os.makedirs(path, exist_ok=True)
                if not os.access(path, os.W_OK):
                    raise PermissionError(13, "permission denied")
            root = zarr.open_group(path, mode="a")
            if "dvt_store" not in root.attrs:
                if any(True for _ in root.keys()):
                    raise StoreError(f"{path}: exists and is not a dvt store; choose another -o")
                root.attrs["dvt_store"] = {"layout": LAYOUT, "created_by": f"dvt {__version__}",
                                           **({SETTINGS: settings} if settings else {})}
        else:
            root = zarr.open_group(path, mode="r")
    except (StoreError, zarr.errors.ContainsGroupError):
        raise
    except (OSError, FileNotFoundError) as exc:
        reason = exc.strerror or str(exc)
        raise StoreError(f"{path}: cannot open the store ({reason}); check the path and "
                         "permissions") from None
    except Exception as exc:  # zarr raises several types for a folder that is not a zarr group
        raise StoreError(f"{path}: not a zarr store ({type(exc).__name__}); check the path") \
            from None
    info = root.attrs.get("dvt_store")
    if not isinstance(info, dict) or info.get("layout") != LAYOUT:
        raise StoreError(f"{path}: not a dvt store (layout {LAYOUT}); check the path")
    return root


def create_store(path: str | os.PathLike, settings: dict | None = None) -> zarr.Group:
    """Create the store's root and parts groups if needed, recording `settings` (a
    `PrepSettings.record()`) in a new store; returns the root group.

    Call it once before starting parallel writers: zarr's group creation is not safe against
    another process creating the same group at the same moment.
    """
    path = os.fspath(path)
    for attempt in range(5):
        try:
            root = _open_root(path, create=True, settings=settings)
            if PARTS not in root:
                root.create_group(PARTS)
            return root
        except zarr.errors.ContainsGroupError:  # another process won the race: open theirs
            time.sleep(0.05 * (attempt + 1))
    return _open_root(path, create=False)


SETTINGS = "settings"


def recorded_settings(path: str | os.PathLike) -> dict | None:
    """The settings a store was made with: its record, or for a store written before stores
    recorded them, what the metadata of one of its videos says (they were all prepped alike,
    or the store was mixed before anything checked); None for a store without videos."""
    path = os.fspath(path)
    recorded = _open_root(path, create=False).attrs["dvt_store"].get(SETTINGS)
    if recorded is not None:
        return dict(recorded)
    store = Store(path)
    if not len(store):
        return None
    return _settings_of_meta(store.meta(store.video_ids[-1]))


def settings_recorded(path: str | os.PathLike) -> bool:
    """Whether the store records its settings (stores written before it do not)."""
    return SETTINGS in _open_root(os.fspath(path), create=False).attrs["dvt_store"]


def _settings_of_meta(meta: dict) -> dict:
    """What a video's metadata says of the settings (older stores); unknown ones left out."""
    encode = meta.get("encode", {})
    canonical = encode.get("mode") == "canonical"
    out = {"encode_mode": encode.get("mode"),
           **{k: encode.get(k) if canonical else None
              for k in ("size", "fps", "gop", "crf", "preset")},
           "cue_grid": meta.get("cue_grid"), "rgb_codec": meta.get("rgb_codec")}
    if "flow_backend" in meta:
        out["flow_backend"] = meta["flow_backend"]
    return out


def prepare_store(path: str | os.PathLike, settings: dict) -> None:
    """Before a run writes anything: create the store recording `settings`, or check that an
    existing store was made with the same ones (`check_settings`)."""
    check_settings(path, settings)
    create_store(path, settings)


def check_settings(path: str | os.PathLike, settings: dict) -> None:
    """Raise a one-line StoreError naming each setting in which an existing store differs from
    `settings` (a `PrepSettings.record()`); reads only."""
    path = os.fspath(path)
    local, recorded = "://" not in path, None
    if not local or os.path.isfile(os.path.join(path, "zarr.json")):
        try:
            recorded = recorded_settings(path)
        except StoreError:
            if local:
                raise
            # a remote store that is not there yet
    if recorded is not None:
        wanted = json.loads(json.dumps(settings))
        differences = [f"{key} {recorded[key]!r} (this run: {value!r})"
                       for key, value in wanted.items()
                       if key in recorded and recorded[key] != value]
        if differences:
            raise StoreError(f"{path} was prepped with {', '.join(differences)}; a store never "
                             "mixes settings: prep into a new store (-o NEW.zarr), or pass "
                             "--overwrite to delete this one and prep anew")


def delete_store(path: str | os.PathLike) -> None:
    """Delete a local dvt store (checked to be one first), for a run that re-preps it anew."""
    path = os.fspath(path)
    if "://" in path:
        raise StoreError(f"{path}: --overwrite deletes local stores only; delete it yourself")
    if os.path.exists(path):
        _open_root(path, create=False)  # raises unless it is a dvt store
        shutil.rmtree(path)


def open_store(path: str | os.PathLike, mode: str = "r") -> Store:
    """Open a store for reading (docs/design.md §4). Only mode "r" is supported."""
    if mode != "r":
        raise ValueError("open_store is read-only; write with dvt_prep.store.StoreWriter")
    return Store(path)
