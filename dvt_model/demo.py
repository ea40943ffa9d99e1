"""`dvt demo`: the whole pipeline on synthetic data in a few minutes of CPU.

A small run of the motion benchmark (dvt_model.motion_benchmark): videos from two generators of
the motion suite (small objects whose direction is the class, and the appearance control whose
classes are the object's colour), encoded with libx264, prepped (`rgb, md, rgbr, rgbd, tvl1`),
then `dvt_tiny` trained once per cue and seed with the training defaults (only the epochs and
the data size are the demo's), and the held-out top-1 as mean ± std over seeds against chance.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from dvt_model.motion_benchmark import BENCH_CUES, MotionBenchmark, run_motion_benchmark

DEMO_GENERATORS = ("small_object", "appearance")


def run_demo(out_dir: str = "demo_out", *, train_per_class: int = 16, val_per_class: int = 8,
             epochs: int = 10, seeds: tuple[int, ...] = (0, 1), jobs: int = 2,
             cues: tuple[str, ...] = BENCH_CUES, echo: Callable[[str], None] = print) -> str:
    """Runs the demo in `out_dir`; returns the path of its table. Rerunning it reuses what is
    done (videos, stores, finished runs)."""
    start = time.perf_counter()
    bench = MotionBenchmark(out=out_dir, generators=DEMO_GENERATORS, cues=cues, seeds=seeds,
                            train_per_class=train_per_class, val_per_class=val_per_class,
                            epochs=epochs, jobs=jobs)
    echo(f"dvt demo: {len(DEMO_GENERATORS)} generators x {len(seeds)} seeds, each "
         f"{4 * train_per_class} training and {4 * val_per_class} held-out videos; prep "
         f"rgb, md, rgbr, rgbd, tvl1; dvt_tiny once per cue ({', '.join(cues)}), {epochs} "
         f"epochs, {jobs} jobs at a time")
    run_motion_benchmark(bench, echo=echo)
    table = os.path.join(out_dir, "motion_benchmark.md")
    with open(table, encoding="utf-8") as handle:
        echo("\n" + handle.read())
    echo(f"chart: {os.path.join(out_dir, 'motion_benchmark.png')}")
    echo(f"demo finished in {time.perf_counter() - start:.0f} s")
    return table
