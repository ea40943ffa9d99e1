"""`dvt viz STORE VIDEO_ID --cue CUE -o OUT.png|OUT.mp4`."""

from __future__ import annotations

import click

from dvt_prep.cue_names import VIZ_CUES


@click.command()
@click.argument("store_path", metavar="STORE")
@click.argument("video_id")
@click.option("--cue", type=click.Choice(VIZ_CUES), required=True)
@click.option("-o", "--out", required=True, help="OUT.png (one frame) or OUT.mp4 (all frames).")
@click.option("--frame", type=int, help="Frame for a PNG (default: the middle one).")
@click.option("--fps", type=int, default=10, show_default=True, help="Frame rate of an MP4.")
@click.option("--scale", type=click.Choice(("frame", "video")), default="frame",
              show_default=True,
              help="Full arrow length / full colour at the 99.5th-percentile speed of each "
                   "frame, or of the whole video (one scale for every frame).")
def viz(store_path: str, video_id: str, cue: str, out: str, frame: int | None, fps: int,
        scale: str) -> None:
    """Draw a cue beside the frame: mv as arrows, md/tvl1 with the Middlebury colour wheel,
    rgbr/rgbd as images (mid-grey is zero). The magnification is printed on the picture."""
    from dvt_prep.store_reader import open_store
    from dvt_prep.viz import write_picture

    path = write_picture(open_store(store_path), video_id, cue, out, frame=frame, fps=fps,
                         scale=scale)
    click.echo(f"wrote {path}")
