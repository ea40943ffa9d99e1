"""What `dvt inspect` says of a store: sizes per array and frame, against the source videos,
its settings, and what to do with a store of an older layout."""

from __future__ import annotations

import os

from dvt_prep.store_format import RGB_CODECS
from dvt_prep.store_reader import Store
from dvt_prep.store_settings import recorded_settings, settings_recorded


def describe(store: Store, *, videos: bool = True) -> dict:
    """A JSON-able summary of a store. bytes: on disk per array; bytes_per_frame: the same per
    stored frame; computed: arrays computed at read time (no bytes); source_bytes: the source
    videos' file sizes; store_to_source: store bytes / source bytes (None when unknown);
    settings: the recorded (or, for older stores, inferred: settings_recorded False)
    settings; advice: one line, or None. With `videos`, video_list has each video's metadata."""
    ids = store.video_ids
    summaries = {v: store.summary(v) for v in ids}
    frames = sum(s["num_frames"] for s in summaries.values())
    nbytes = store.nbytes()
    computed = sorted({c for s in summaries.values() for c in s.get("computed", ())})
    source_bytes, unknown = 0, 0
    for video_id, summary in summaries.items():
        size = summary.get("source_bytes")
        if size is None:  # an older store: the source file, where it still is
            path = store.meta(video_id).get("source_path", "")
            size = os.path.getsize(path) if os.path.isfile(path) else None
        if size is None:
            unknown += 1
        else:
            source_bytes += size
    total = sum(nbytes.values())
    metas = {v: store.meta(v) for v in ids} if videos else {}
    return {
        "path": store.path,
        "videos": len(ids),
        "frames": frames,
        "parts": store.num_parts,
        "uncommitted_parts": store.uncommitted_parts,
        "bytes": nbytes,
        "bytes_per_frame": {k: round(v / frames, 1) for k, v in nbytes.items()} if frames else {},
        "computed": computed,
        "store_bytes": total,
        "source_bytes": source_bytes if not unknown else None,
        "store_to_source": round(total / source_bytes, 3) if source_bytes and not unknown
        else None,
        "settings": recorded_settings(store.path),
        "settings_recorded": settings_recorded(store.path),
        "advice": _advice(store, summaries),
        "failures": store.failures,
        "video_list": [{"video_id": v, "num_frames": m["num_frames"],
                        "stored_size": m["stored_size"], "frame_types": m["frame_types"],
                        "cues": m["cues"], "encode": m["encode"], "cue_grid": m["cue_grid"],
                        "rgb_codec": m.get("rgb_codec")}
                       for v, m in metas.items()],
    }


def _advice(store: Store, summaries: dict[str, dict]) -> str | None:
    """For a store whose rgb is JPEG or lossless while it could be the H.264 stream: how to
    get the smaller layout (a store never mixes settings, so into a new store)."""
    with_rgb = [v for v, s in summaries.items() if "rgb" in s["arrays"]]
    if not with_rgb:
        return None
    first = store.meta(with_rgb[0])  # an older index has no codec in its summaries
    codecs = {summaries[v].get("rgb_codec", first.get("rgb_codec")) for v in with_rgb}
    codecs = {c if c in RGB_CODECS else "jpeg or lossless" for c in codecs} - {"h264"}
    if not codecs or first.get("encode", {}).get("mode") != "canonical":
        return None
    return (f"rgb is stored as {', '.join(sorted(codecs))}; for the smaller H.264 layout (rgb as "
            "the canonical stream, rgbr and rgbd computed at read time) prep the same videos "
            "into a new store: dvt prep VIDEOS -o NEW.zarr")
