"""`dvt demo`: the whole pipeline on synthetic data in a few minutes of CPU.

1. Generate a motion dataset in which appearance carries no label (dvt_prep.motion_classes),
   encoded with libx264. 2. Prep every cue into one store with a process pool. 3. Run the cue
   ablation of `dvt_tiny` (md_rgbr, avgp, rgbd, tvl1, none): same data, seed and schedule, only
   the cue changes. 4. Print the table and where the chart is.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from dvt_model.ablate import run_ablation
from dvt_model.train_config import TrainConfig
from dvt_prep.encode import EncodeSettings
from dvt_prep.extract import PrepSettings
from dvt_prep.inputs import collect_inputs
from dvt_prep.motion_classes import write_motion_dataset
from dvt_prep.parallel import prep_parallel

DEMO_CUES = ("md_rgbr", "avgp", "rgbd", "tvl1", "none")


def run_demo(out_dir: str = "demo_out", *, train_per_class: int = 16, val_per_class: int = 8,
             epochs: int = 10, workers: int = 2, cues: tuple[str, ...] = DEMO_CUES,
             echo: Callable[[str], None] = print) -> str:
    """Runs the demo in `out_dir`; returns the path of `ablation.md`. Rerunning it reuses what
    is done (videos, store, finished runs)."""
    start = time.perf_counter()
    videos_dir = os.path.join(out_dir, "videos")
    stores = {split: os.path.join(out_dir, f"{split}.zarr") for split in ("train", "val")}
    labels = {split: os.path.join(videos_dir, f"{split}.csv") for split in ("train", "val")}
    if not all(os.path.isfile(p) for p in labels.values()):
        echo(f"[1/3] generating {8 * (train_per_class + val_per_class)} videos (8 motion "
             f"classes, random textures) in {videos_dir}")
        write_motion_dataset(videos_dir, videos_per_class=train_per_class, split="train")
        write_motion_dataset(videos_dir, videos_per_class=val_per_class, split="val", seed=1)
    settings = PrepSettings(cues=("rgb", "md", "rgbr", "rgbd", "tvl1"), rgb_codec="lossless",
                            encode=EncodeSettings(size=64))
    for split, store in stores.items():
        echo(f"[2/3] dvt prep: rgb, md, rgbr, rgbd, tvl1 at 64x64 into {store} "
             f"({workers} workers)")
        # ids relative to the videos folder ("train/right_000"), as the label files name them
        inputs = [type(v)(f"{split}/{v.video_id}", v.path)
                  for v in collect_inputs([os.path.join(videos_dir, split)])]
        report = prep_parallel(inputs, store, settings, workers=workers)
        echo(f"      {report.summary()}")
    echo(f"[3/3] dvt ablate: dvt_tiny, cue = {', '.join(cues)}; {epochs} epochs each")
    base = TrainConfig(store=[stores["train"]], labels=labels["train"],
                       val_store=[stores["val"]], val_labels=labels["val"],
                       out=out_dir, model="dvt_tiny", epochs=epochs, batch_size=16, lr=3e-3,
                       warmup_epochs=1.0, weight_decay=0.05, label_smoothing=0.1,
                       num_workers=1, crop_scale=(0.6, 1.0), flip=False, quiet=True)
    run_ablation(base, {"cue": list(cues)}, seeds=[0], out_dir=out_dir, num_clips=2,
                 num_crops=1, on_run=lambda name, status: echo(f"      {name}: {status}"))
    table = os.path.join(out_dir, "ablation.md")
    with open(table, encoding="utf-8") as handle:
        echo("\n" + handle.read())
    echo(f"chart: {os.path.join(out_dir, 'ablation.png')}")
    echo(f"demo finished in {time.perf_counter() - start:.0f} s")
    return table
