"""`dvt inspect STORE [--json]`."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("store_path", metavar="STORE")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--videos/--no-videos", default=True, help="List the videos.")
def inspect(store_path: str, as_json: bool, videos: bool) -> None:
    """What is in a store: videos, frames, bytes per cue, settings, failures."""
    from dvt_prep.store import open_store

    store = open_store(store_path)
    ids = store.video_ids
    # the full metadata lives in each part's attributes; without the list, index.json's
    # summaries (num_frames) are enough
    metas = {video_id: store.meta(video_id) for video_id in ids} if videos else {}
    frames = sum(store.summary(video_id)["num_frames"] for video_id in ids)
    nbytes = store.nbytes()
    summary = {
        "path": store.path,
        "videos": len(ids),
        "frames": frames,
        "parts": store.num_parts,
        "uncommitted_parts": store.uncommitted_parts,
        "bytes": nbytes,
        "bytes_per_frame": {k: round(v / frames, 1) for k, v in nbytes.items()} if frames else {},
        "failures": store.failures,
        "video_list": [{"video_id": v, "num_frames": m["num_frames"],
                        "stored_size": m["stored_size"], "frame_types": m["frame_types"],
                        "cues": m["cues"], "encode": m["encode"], "cue_grid": m["cue_grid"]}
                       for v, m in metas.items()] if videos else [],
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{store.path}: {len(ids)} videos, {frames} frames, {store.num_parts} parts"
               + (f" ({store.uncommitted_parts} uncommitted)" if store.uncommitted_parts else ""))
    for name, size in sorted(nbytes.items()):
        per_frame = f", {size / frames:,.0f} B/frame" if frames else ""
        click.echo(f"  {name:9s} {size / 1e6:10.2f} MB{per_frame}")
    if videos:
        for entry in summary["video_list"]:
            width, height = entry["stored_size"]
            click.echo(f"  {entry['video_id']}: {entry['num_frames']} frames {width}x{height} "
                       f"{entry['encode']['mode']} cues={','.join(entry['cues'])} "
                       f"grid={entry['cue_grid']}")
    if store.failures:
        click.echo(f"  {len(store.failures)} failed:")
        for video_id, reason in store.failures.items():
            click.echo(f"    {video_id}: {reason}")
