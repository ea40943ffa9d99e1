"""`dvt inspect STORE [--json]`."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("store_path", metavar="STORE")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--videos/--no-videos", default=True, help="List the videos.")
def inspect(store_path: str, as_json: bool, videos: bool) -> None:
    """What is in a store: videos, frames, bytes per cue and frame against the source videos,
    settings, failures."""
    from dvt_prep.store_reader import open_store
    from dvt_prep.store_report import describe

    store = open_store(store_path)
    summary = describe(store, videos=videos)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    frames = summary["frames"]
    click.echo(f"{store.path}: {summary['videos']} videos, {frames} frames, "
               f"{store.num_parts} parts"
               + (f" ({store.uncommitted_parts} uncommitted)" if store.uncommitted_parts else ""))
    for name, size in sorted(summary["bytes"].items()):
        per_frame = f", {size / frames:,.0f} B/frame" if frames else ""
        click.echo(f"  {name:9s} {size / 1e6:10.2f} MB{per_frame}")
    for name in summary["computed"]:
        click.echo(f"  {name:9s}       0.00 MB, computed at read time from rgb (H.264)")
    ratio = summary["store_to_source"]
    source = (f"{summary['source_bytes'] / 1e6:.2f} MB of source videos, store/source "
              f"{ratio:.2f}" if ratio is not None else "source sizes unknown")
    click.echo(f"  total     {summary['store_bytes'] / 1e6:10.2f} MB; {source}")
    settings = summary["settings"]
    if settings:
        source = "" if summary["settings_recorded"] else " (not recorded: from its videos)"
        click.echo(f"  settings{source}: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    if summary["advice"]:
        click.echo(f"  {summary['advice']}")
    for entry in summary["video_list"]:
        width, height = entry["stored_size"]
        click.echo(f"  {entry['video_id']}: {entry['num_frames']} frames {width}x{height} "
                   f"{entry['encode']['mode']} cues={','.join(entry['cues'])} "
                   f"grid={entry['cue_grid']}")
    if store.failures:
        click.echo(f"  {len(store.failures)} failed:")
        for video_id, reason in store.failures.items():
            click.echo(f"    {video_id}: {reason}")
