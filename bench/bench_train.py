"""Benchmark of training (issue: training, evaluation, ablation, demo).

Training clips/s of `dvt_small` (cue md_rgbr) and `divided_small` (the TimeSformer baseline) on
the CPU at T = 16, 224x224, batch 2, with 2 DataLoader workers, through `dvt_model.train.train`
itself; and the share of step time spent waiting for data (target < 10%). Steps after the first
(start-up) are counted; the baseline ratio is divided / dvt in the same run.

Run: `dvt bench train` or `python bench/bench_train.py [--steps 5] [--batch-size 2]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile

from dvt_model.metrics_log import MetricsLog
from dvt_model.train import train
from dvt_model.train_config import TrainConfig
from dvt_prep.encode import EncodeSettings
from dvt_prep.extract import PrepSettings
from dvt_prep.inputs import VideoInput
from dvt_prep.parallel import prep_parallel
from dvt_prep.synthetic import write_translating_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="dvt_bench_train_")
    videos = [VideoInput(f"v{i}", write_translating_video(
        os.path.join(folder, f"v{i}.mp4"), height=256, width=340, num_frames=48,
        dx=(-1) ** i * 1.5, dy=0.5, seed=i, crf=23)) for i in range(16)]
    store = os.path.join(folder, "cache.zarr")
    prep_parallel(videos, store, PrepSettings(cues=("rgb", "md", "rgbr"),
                                              encode=EncodeSettings(size=256)), workers=2)
    labels = os.path.join(folder, "labels.csv")
    with open(labels, "w", encoding="utf-8") as handle:
        handle.write("video_id,label\n" + "".join(f"v{i},{i % 2}\n" for i in range(16)))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, CPU; T=16, 224x224, batch "
          f"{args.batch_size}, {args.workers} DataLoader workers, {args.steps} steps "
          "(the first not counted)")
    rates = {}
    for model, cue in (("dvt_small", "md_rgbr"), ("divided_small", "none")):
        run = os.path.join(folder, model)
        train(TrainConfig(store=[store], labels=labels, out=run, model=model, cue=cue,
                          epochs=100, batch_size=args.batch_size, num_workers=args.workers,
                          max_steps=args.steps, quiet=True))
        steps = [r for r in MetricsLog.read(run) if r["kind"] == "step"][1:]
        rates[model] = statistics.median(r["clips_per_s"] for r in steps)
        wait = sum(r["data_wait"] for r in steps) / len(steps)
        print(f"{model:<14} {rates[model]:6.2f} clips/s   data wait {100 * wait:5.1f}% of step "
              "time (target < 10%)")
    print(f"divided / dvt: {rates['divided_small'] / rates['dvt_small']:.2f}")


if __name__ == "__main__":
    main()
