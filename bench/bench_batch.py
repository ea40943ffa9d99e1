"""Benchmark of batch preprocessing (issue: batch preprocessing at dataset scale).

Videos/s of `prep_parallel` with 1 and 2 worker processes on the same generated videos (fresh
store each time; parallel efficiency = rate(2) / (2 * rate(1)), target >= 0.85), and, in one
process, the share of time spent writing the store against extracting cues. Opening a store of
many parts with and without the consolidated index.

Run: `dvt bench batch` or `python bench/bench_batch.py [--videos 24]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time

import numpy as np

from dvt_prep import StoreWriter, open_store
from dvt_prep.encode import EncodeSettings
from dvt_prep.extract import PrepSettings, extract_video
from dvt_prep.inputs import VideoInput
from dvt_prep.parallel import prep_parallel
from dvt_prep.store_layout import INDEX, consolidate
from dvt_prep.synthetic import write_translating_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=24)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="dvt_bench_batch_")
    videos = [VideoInput(f"v{i}", write_translating_video(
        os.path.join(folder, f"v{i}.mp4"), height=240, width=320, num_frames=64,
        dx=1.0 + i % 3, dy=0.5, seed=i, crf=23)) for i in range(args.videos)]
    settings = PrepSettings(cues=("rgb", "md", "rgbr", "rgbd"), encode=EncodeSettings(size=256))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {args.videos} videos of 64 "
          "frames at 320x240 -> 336x256, cues rgb,md,rgbr,rgbd")
    rates = {}
    for workers in (1, 2, 1, 2):  # twice each, alternating; best of each
        store = os.path.join(folder, f"w{workers}.zarr")
        shutil.rmtree(store, ignore_errors=True)
        start = time.perf_counter()
        report = prep_parallel(videos, store, settings, workers=workers, chunk_size=2)
        rate = len(report.done) / (time.perf_counter() - start)
        rates[workers] = max(rates.get(workers, 0.0), rate)
    efficiency = rates[2] / (2 * rates[1])
    print(f"1 worker: {rates[1]:.2f} videos/s; 2 workers: {rates[2]:.2f} videos/s; parallel "
          f"efficiency {efficiency:.2f} (target >= 0.85)")
    extract_time = write_time = 0.0
    store = os.path.join(folder, "split.zarr")
    with StoreWriter(store) as writer:
        for video in videos:
            start = time.process_time()
            arrays, meta = extract_video(video.path, settings)
            middle = time.process_time()
            writer.add_video(video.video_id, arrays, meta)  # flushes a part every 512 frames
            write_time += time.process_time() - middle
            extract_time += middle - start
        start = time.process_time()
        writer.flush()
        write_time += time.process_time() - start
    share = write_time / (write_time + extract_time)
    print(f"one process: extracting {extract_time:.1f} s, writing {write_time:.1f} s (CPU): "
          f"{100 * share:.0f}% of the time is the store write (JPEG rgb, zstd cues)")
    many = os.path.join(folder, "many.zarr")
    arrays = {"md": np.zeros((4, 2, 2, 2), np.float32), "md_valid": np.ones((4, 2, 2), np.float32)}
    with StoreWriter(many, part_frames=4) as writer:
        for i in range(1000):
            writer.add_video(f"v{i}", arrays, {"arrays": list(arrays), "stored_size": [32, 32],
                                               "frame_types": "I" + "P" * 299})
    opened = {}
    for label in ("without index", "with index"):
        if label == "with index":
            consolidate(many)
        elif os.path.exists(os.path.join(many, INDEX)):
            os.remove(os.path.join(many, INDEX))
        open_store(many)  # warm the file cache
        start = time.perf_counter()
        assert len(open_store(many)) == 1000
        opened[label] = time.perf_counter() - start
    print(f"opening a store of 1000 parts: {opened['without index']:.3f} s without the index, "
          f"{opened['with index']:.3f} s with it")


if __name__ == "__main__":
    main()
