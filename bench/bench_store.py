"""Benchmark of store size: bytes on disk per frame per array and store bytes / source bytes.

For `rgb,md,rgbr,rgbd` at the defaults (rgb as the canonical H.264 stream, rgbr and rgbd
computed at read time), against the JPEG layout (`--rgb-codec jpeg`: rgb JPEG q95 4:4:4,
rgbr and rgbd stored as int16) of the same videos in the same run, on the shared real clips
(../shared/data/mv-extractor: vid_h264.mp4, 1280x720; vid_h264.264, raw H.264 with B-frames)
and a synthetic one (340x256 translating noise, 300 frames). Then a Kinetics-400 estimate
(240 k videos of about 10 s, about 450 GB of source) at each clip's rates.

Run: `dvt bench store` or `python bench/bench_store.py [VIDEO...]`.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile

from dvt_prep import open_store
from dvt_prep.batch import prep_videos
from dvt_prep.extract import PrepSettings
from dvt_prep.inputs import VideoInput
from dvt_prep.store_report import describe
from dvt_prep.synthetic import write_translating_video

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mv-extractor")
CUES = ("rgb", "md", "rgbr", "rgbd")
K400_VIDEOS, K400_FRAMES, K400_SOURCE_BYTES = 240_000, 240_000 * 300, 450e9


def measure(path: str, folder: str, codec: str | None) -> dict:
    """describe() of a store of `path` alone, prepped at the defaults but `codec`."""
    store_path = os.path.join(folder, f"{os.path.basename(path)}.{codec or 'default'}.zarr")
    report = prep_videos([VideoInput("v", path)], store_path,
                         PrepSettings(cues=CUES, rgb_codec=codec))
    if report.failed:
        raise SystemExit(f"{path}: {report.failed['v']}")
    return describe(open_store(store_path), videos=False)


def show(name: str, summary: dict) -> None:
    frames = summary["frames"]
    arrays = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(summary["bytes_per_frame"].items()))
    computed = f"; computed at read: {', '.join(summary['computed'])}" \
        if summary["computed"] else ""
    per_frame = summary["store_bytes"] / frames
    print(f"  {name}: {arrays} B/frame{computed}; total {per_frame:,.0f} B/frame, "
          f"store/source {summary['store_to_source']:.3f}; Kinetics-400 at this rate: "
          f"{K400_FRAMES * per_frame / 1e9:,.0f} GB per frame rate, "
          f"{K400_SOURCE_BYTES * summary['store_to_source'] / 1e9:,.0f} GB per source ratio")


def main(paths: list[str]) -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; cues {','.join(CUES)}, "
          "defaults (--size 256, gop 16, crf 23, superfast, cue grid 4)")
    with tempfile.TemporaryDirectory() as folder:
        if not paths:
            paths = [os.path.join(SHARED, n) for n in ("vid_h264.mp4", "vid_h264.264")
                     if os.path.exists(os.path.join(SHARED, n))]
            paths.append(write_translating_video(os.path.join(folder, "synthetic.mp4"),
                                                 height=256, width=340, num_frames=300,
                                                 dx=1.5, dy=0.5, crf=23))
        for path in paths:
            default, jpeg = measure(path, folder, None), measure(path, folder, "jpeg")
            print(f"{os.path.basename(path)}: {default['frames']} frames, "
                  f"{default['source_bytes'] / default['frames']:,.0f} source B/frame")
            show("h264 (default)", default)
            show("jpeg layout", jpeg)


if __name__ == "__main__":
    main(sys.argv[1:])
