"""The store's layout on disk: the root, its parts, the consolidated index (docs/design.md §4).

Layout (one hierarchy, many videos):

    STORE/zarr.json                 root group; attributes {"dvt_store": {"layout": 1, ...}}
    STORE/parts/<part>/             one group per flush of one writer, written once, never edited
    STORE/parts/<part>/<array>      (F, ...) the frames of all the part's videos, back to back;
                                    one shard per array, so one file per cue and part
    STORE/parts/<part>/rgb_h264     with --rgb-codec h264: the videos' canonical H.264 streams
    STORE/parts/<part>/rgb_packets  back to back, and (F, 3) per frame: byte offset, byte
                                    length, frames since the GOP's key frame (rgb_stream.py)
    STORE/index.json                the consolidated index (`consolidate`), optional

The root attributes record the settings the store was made with (store_settings.py); a run
with other settings stops before it writes anything.

A part is committed when its group attributes list its videos (`videos`: id -> metadata with
`offset` and `num_frames` into the part's arrays); that attribute is written last, by an atomic
file replace. Readers ignore parts without it, so a crash at any moment leaves every video whole
or absent, and several processes can write at once without ever sharing a shard. Video ids are
never turned into paths. When a video is in several parts, the newest part wins.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import zarr
import zarr.errors

from dvt_prep.atomic import write_text_atomically
from dvt_prep.errors import StoreError

LAYOUT = 1
PARTS = "parts"
INDEX = "index.json"
SETTINGS = "settings"  # the root attribute's key for the recorded settings
SUMMARY_ONLY = "summary_only"  # marks a video entry taken from the index
SUMMARY_KEYS = ("num_frames", "arrays", "stored_size", "offset", "rgb_codec", "computed",
                "cue_grid", "source_bytes")


def is_remote(path: str) -> bool:
    """A store addressed by URL (fsspec), which is read through zarr only."""
    return "://" in path


def open_root(path: str, *, create: bool, settings: dict | None = None) -> zarr.Group:
    """The store's root group, checked to be a dvt store of this layout; with `create`, made
    if needed (recording `settings` in a new store). Every failure is one StoreError line."""
    from dvt_prep import __version__

    if not create and not os.path.exists(path) and not is_remote(path):
        raise StoreError(f"{path}: no such store; create it with `dvt prep ... -o {path}`")
    try:
        if create:
            if not is_remote(path):
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
            root = open_root(path, create=True, settings=settings)
            if PARTS not in root:
                root.create_group(PARTS)
            return root
        except zarr.errors.ContainsGroupError:  # another process won the race: open theirs
            time.sleep(0.05 * (attempt + 1))
    return open_root(path, create=False)


def delete_store(path: str | os.PathLike) -> None:
    """Delete a local dvt store (checked to be one first), for a run that re-preps it anew."""
    path = os.fspath(path)
    if is_remote(path):
        raise StoreError(f"{path}: --overwrite deletes local stores only; delete it yourself")
    if os.path.exists(path):
        open_root(path, create=False)  # raises unless it is a dvt store
        shutil.rmtree(path)


def part_names(path: str, parts: zarr.Group | None) -> list[str]:
    """Part names, sorted (= oldest first). A local store lists its folder: zarr's
    `group_keys()` reads every child's metadata, one file per part."""
    if parts is None:
        return []
    if not is_remote(path):
        folder = os.path.join(path, PARTS)
        return sorted(name for name in os.listdir(folder)
                      if os.path.isfile(os.path.join(folder, name, "zarr.json")))
    return sorted(parts.group_keys())


def part_attributes(parts: zarr.Group, name: str) -> dict | None:
    """A part's attributes if it is committed (they list its videos), else None."""
    try:
        attrs = dict(parts[name].attrs)
    except (KeyError, ValueError, json.JSONDecodeError, OSError):
        return None
    return attrs if isinstance(attrs.get("videos"), dict) else None


def read_index(path: str) -> dict[str, dict]:
    """part name -> its attributes in summary form, from the consolidated index (if any)."""
    if is_remote(path):
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
    if is_remote(path):
        return 0
    root = open_root(path, create=False)
    parts = root.get(PARTS)
    indexed = read_index(path)
    out = {}
    for name in part_names(path, parts):
        attrs = indexed.get(name) or part_attributes(parts, name)
        if attrs is None:
            continue  # not committed (yet, or a crashed writer's)
        out[name] = {"videos": {v: {**{k: e[k] for k in SUMMARY_KEYS if k in e},
                                    SUMMARY_ONLY: True}
                                for v, e in attrs["videos"].items()},
                     "failures": attrs.get("failures", {})}
    write_text_atomically(os.path.join(path, INDEX),
                          json.dumps({"layout": LAYOUT, "parts": out}, separators=(",", ":")))
    return len(out)
