"""The motion benchmark: every cue on every generator of `dvt_prep.motion_suite`, over seeds.

For each (generator, seed): a training and a held-out split drawn with that seed, prepped into
two stores (`rgb, md, rgbr, rgbd, tvl1` at the videos' size), then one `dvt train` run per cue
with the training defaults (only epochs, frames and size given) and the held-out top-1. Jobs
run in parallel processes, one compute thread each. Results: `motion_benchmark.md` (mean ± std
over seeds, chance marked), `.csv` (every run) and `.png` (bars with error bars and chance).
Finished runs are kept: a rerun only does what is missing.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from dvt_model.ablate import run_ablation
from dvt_model.train_config import TrainConfig
from dvt_prep.motion_suite import GENERATORS, write_split

BENCH_CUES = ("md_rgbr", "tvl1", "rgbd", "avgp", "none")
PREP_CUES = ("rgb", "md", "rgbr", "rgbd", "tvl1")


@dataclass(frozen=True)
class MotionBenchmark:
    """What to run. `model_options` go to every model (e.g. the paper-faithful variant)."""

    out: str = "bench_out/motion"
    generators: tuple[str, ...] = tuple(GENERATORS)
    cues: tuple[str, ...] = BENCH_CUES
    seeds: tuple[int, ...] = (0, 1, 2)
    train_per_class: int = 16
    val_per_class: int = 8
    epochs: int = 10
    size: int = 64
    num_frames: int = 16
    model: str = "dvt_tiny"
    model_options: dict = field(default_factory=dict)
    jobs: int = 2
    data_dir: str | None = None  # videos and stores (default: out/data); shared by variants
    prep_cues: tuple[str, ...] = PREP_CUES  # what the stores hold (a subset is prepped faster)

    @property
    def data_root(self) -> str:
        return self.data_dir or os.path.join(self.out, "data")


def prepare_split_stores(folder: str, generator: str, *, seed: int, train_per_class: int,
                         val_per_class: int, size: int, num_frames: int,
                         cues: Sequence[str] = PREP_CUES) -> dict[str, str]:
    """Videos, labels and stores of one generator and seed in `folder` (reused when there;
    videos already prepped with every cue in `cues` are skipped, others get them added).
    Returns {"train_store", "train_labels", "val_store", "val_labels"}."""
    from dvt_prep.encode import EncodeSettings
    from dvt_prep.extract import PrepSettings
    from dvt_prep.inputs import collect_inputs
    from dvt_prep.parallel import prep_parallel

    settings = PrepSettings(cues=tuple(cues), encode=EncodeSettings(size=size))
    paths = {}
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        labels = os.path.join(folder, f"{split}.csv")
        if not os.path.isfile(labels):
            write_split(folder, generator, split=split, videos_per_class=per_class, seed=seed,
                        size=size, num_frames=num_frames)
        store = os.path.join(folder, f"{split}.zarr")
        inputs = [type(v)(f"{split}/{v.video_id}", v.path)
                  for v in collect_inputs([os.path.join(folder, split)])]
        report = prep_parallel(inputs, store, settings, workers=1)
        if report.failed:
            raise RuntimeError(f"{store}: {report.summary()}")
        paths[f"{split}_store"], paths[f"{split}_labels"] = store, labels
    return paths


def job_config(bench: MotionBenchmark, generator: str, seed: int) -> TrainConfig:
    """The `dvt train` defaults for one generator and seed (only epochs, frames and size
    given), its stores prepped first; runs go under `bench.out/<generator>/seed=<seed>`. Sets
    this process's compute threads to one."""
    from dvt_prep.threads import set_compute_threads

    set_compute_threads(1, torch=True)
    folder = os.path.join(bench.out, generator, f"seed={seed}")
    data = os.path.join(bench.data_root, generator, f"seed={seed}")
    paths = prepare_split_stores(data, generator, seed=seed,
                                 train_per_class=bench.train_per_class,
                                 val_per_class=bench.val_per_class, size=bench.size,
                                 num_frames=bench.num_frames, cues=bench.prep_cues)
    # num_workers=0: loader workers change nothing in the results (tests/test_train.py), and
    # the jobs already use every core.
    return TrainConfig(store=[paths["train_store"]], labels=paths["train_labels"],
                       val_store=[paths["val_store"]], val_labels=paths["val_labels"],
                       out=folder, model=bench.model, epochs=bench.epochs,
                       num_frames=bench.num_frames, img_size=bench.size,
                       model_options=dict(bench.model_options), num_workers=0, quiet=True)


def run_job(bench: MotionBenchmark, generator: str, seed: int) -> list[dict]:
    """One generator and seed: data, stores, a run per cue. Returns a row per cue."""
    base = job_config(bench, generator, seed)
    rows = run_ablation(base, {"cue": list(bench.cues)}, seeds=[seed], out_dir=base.out,
                        num_clips=1, num_crops=1)
    return [{"generator": generator, "cue": r["cue"], "seed": seed, "top1": r["top1"]}
            for r in rows]


def run_motion_benchmark(bench: MotionBenchmark, *, echo: Callable[[str], None] = print
                         ) -> list[dict]:
    """Every job of `bench`, then the reports in `bench.out`. Returns a row per run."""
    os.makedirs(bench.out, exist_ok=True)
    with open(os.path.join(bench.out, "benchmark.json"), "w", encoding="utf-8") as handle:
        json.dump({**bench.__dict__, "generators": list(bench.generators),
                   "cues": list(bench.cues), "seeds": list(bench.seeds)}, handle, indent=1)
    jobs = [(g, s) for s in bench.seeds for g in bench.generators]
    rows: list[dict] = []
    with ProcessPoolExecutor(max_workers=bench.jobs) as pool:
        futures = {pool.submit(run_job, bench, g, s): (g, s) for g, s in jobs}
        for future, (generator, seed) in futures.items():
            job_rows = future.result()
            rows.extend(job_rows)
            echo(f"  {generator} seed {seed}: " + ", ".join(
                f"{r['cue']} {100 * r['top1']:.0f}%" for r in job_rows))
    write_reports(rows, bench)
    return rows


def summarise(rows: Sequence[dict]) -> dict[tuple[str, str], tuple[float, float, int]]:
    """(generator, cue) -> (mean top-1, std over seeds, seeds)."""
    groups: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        groups.setdefault((row["generator"], row["cue"]), []).append(row["top1"])
    return {key: (float(np.mean(v)), float(np.std(v)), len(v)) for key, v in groups.items()}


def chance(generator: str) -> float:
    return 1.0 / len(GENERATORS[generator].classes)


def format_table(rows: Sequence[dict], bench: MotionBenchmark) -> str:
    """Markdown: a row per generator, a column per cue, top-1 % mean ± std, chance."""
    table = summarise(rows)
    seeds = max((n for _, _, n in table.values()), default=0)
    lines = [f"# Motion benchmark: {bench.model}, {bench.epochs} epochs, "
             f"{bench.train_per_class} training / {bench.val_per_class} held-out videos per "
             f"class, {bench.size}x{bench.size}, {bench.num_frames} frames, {seeds} seed(s)",
             "", "Held-out top-1 (%), mean ± std over seeds."
             + (f" Model options: {bench.model_options}." if bench.model_options else ""), "",
             "| generator | chance | " + " | ".join(bench.cues) + " |",
             "| --- | --- | " + " | ".join("---" for _ in bench.cues) + " |"]
    for generator in bench.generators:
        cells = []
        for cue in bench.cues:
            mean, std, _ = table.get((generator, cue), (float("nan"), float("nan"), 0))
            cells.append(f"{100 * mean:.1f} ± {100 * std:.1f}")
        lines.append(f"| {generator} | {100 * chance(generator):.0f} | " + " | ".join(cells)
                     + " |")
    return "\n".join(lines) + "\n"


def write_reports(rows: Sequence[dict], bench: MotionBenchmark) -> None:
    with open(os.path.join(bench.out, "motion_benchmark.csv"), "w", newline="",
              encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["generator", "cue", "seed", "top1"])
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: (r["generator"], r["cue"], r["seed"])))
    with open(os.path.join(bench.out, "motion_benchmark.md"), "w", encoding="utf-8") as handle:
        handle.write(format_table(rows, bench))
    plot(rows, bench, os.path.join(bench.out, "motion_benchmark.png"))


def plot(rows: Sequence[dict], bench: MotionBenchmark, path: str) -> None:
    """Grouped bars (a group per generator, a bar per cue) with std error bars; chance as a
    dashed line over each group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = summarise(rows)
    width = 0.8 / len(bench.cues)
    figure, axes = plt.subplots(figsize=(1.6 * len(bench.generators) + 2, 4))
    for i, cue in enumerate(bench.cues):
        means = [100 * table.get((g, cue), (np.nan, 0, 0))[0] for g in bench.generators]
        stds = [100 * table.get((g, cue), (0, np.nan, 0))[1] for g in bench.generators]
        axes.bar(np.arange(len(bench.generators)) + (i - (len(bench.cues) - 1) / 2) * width,
                 means, width, yerr=stds, capsize=2, label=cue)
    for j, generator in enumerate(bench.generators):
        axes.hlines(100 * chance(generator), j - 0.45, j + 0.45, colors="black",
                    linestyles="dashed", label="chance" if j == 0 else None)
    axes.set_xticks(range(len(bench.generators)), bench.generators, rotation=20)
    axes.set_ylabel("held-out top-1 (%)")
    axes.set_ylim(0, 105)
    axes.legend(ncol=len(bench.cues) + 1, fontsize=8, loc="upper center",
                bbox_to_anchor=(0.5, 1.15))
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


