"""The settings a store records (size, fps, gop, crf, preset, encode mode, cue grid, rgb
codec, flow backend and its parameters), and the check that a run never mixes them."""

from __future__ import annotations

import json
import os

from dvt_prep.errors import StoreError
from dvt_prep.store_layout import SETTINGS, create_store, is_remote, open_root
from dvt_prep.store_reader import Store


def recorded_settings(path: str | os.PathLike) -> dict | None:
    """The settings a store was made with: its record, or for a store written before stores
    recorded them, what the metadata of one of its videos says (they were all prepped alike,
    or the store was mixed before anything checked); None for a store without videos."""
    path = os.fspath(path)
    recorded = open_root(path, create=False).attrs["dvt_store"].get(SETTINGS)
    if recorded is not None:
        return dict(recorded)
    store = Store(path)
    if not len(store):
        return None
    return _settings_of_meta(store.meta(store.video_ids[-1]))


def settings_recorded(path: str | os.PathLike) -> bool:
    """Whether the store records its settings (stores written before it do not)."""
    return SETTINGS in open_root(os.fspath(path), create=False).attrs["dvt_store"]


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
    local, recorded = not is_remote(path), None
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
