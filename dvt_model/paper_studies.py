"""The DVT paper's other findings checked on the motion suite (`dvt bench paper`, issue 28).

Wang and Torresani (CVPR 2022) report four findings on Kinetics / Something-Something; each
study here sweeps the one `ModelConfig` field a finding is about, on the generators of
`dvt_prep.motion_suite` where it should matter, with everything else at the DVT's defaults:

| study | field | values | generator | the paper's claim |
| --- | --- | --- | --- | --- |
| `points` | `num_points` (N) | 1, 2, 4, 8, 16 | distractors | accuracy levels off after N = 8 |
| `subclips` | `num_subclips` (B) | 1, 2, 4, 8 (T = 16) | back_and_forth | B = 4 (T' = 4) is best |
| `attention` | `attention` | dst, dms, dst_dms | large_object | D-ST-A and D-MS-A together beat either |
| `fusion` | `fusion` | mixer, mlp | large_object | the MLP-Mixer fusion beats the MLP one |

The machinery is the motion benchmark's (`dvt_model.motion_benchmark`): per generator and seed
one training and one held-out split, prepped once into stores shared with the motion benchmark
(`data_dir`); `dvt_tiny` with the `dvt train` defaults for `epochs` epochs, one run per value
and seed; finished runs are kept (a rerun trains only what is missing). Every run names all
four fields (`cue=md_rgbr,num_points=8,num_subclips=4,attention=dst_dms,fusion=mixer,seed=0`),
so a configuration two studies share on one generator is trained once.

Results in `out`: `paper_studies.md` (a table per study, mean ± std of held-out top-1 over
seeds, chance, and a verdict), `paper_studies.csv` (every run) and `paper_<study>.png`.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from dvt_model.ablate import run_ablation
from dvt_model.motion_benchmark import MotionBenchmark, job_config
from dvt_prep.errors import InputError
from dvt_prep.motion_suite import GENERATORS

# The DVT's defaults at T = 16, named in every run so that studies share runs
DEFAULTS = {"num_points": 8, "num_subclips": 4, "attention": "dst_dms", "fusion": "mixer"}
STUDY_CUE = "md_rgbr"
PREP_CUES = ("rgb", "md", "rgbr")  # what md_rgbr reads (rgbr is computed from h264 rgb)


@dataclass(frozen=True)
class Study:
    """One finding: `factor` (a key of DEFAULTS) swept over `values` on `generators`. `best`
    is the value the paper finds best (for `points`: where accuracy levels off)."""

    name: str
    factor: str
    values: tuple
    generators: tuple[str, ...]
    best: object
    claim: str

    def grid(self) -> dict[str, list]:
        """The run_ablation grid: the cue, every default, the factor's values."""
        return {"cue": [STUDY_CUE], **{k: [v] for k, v in DEFAULTS.items()},
                self.factor: list(self.values)}


STUDIES: dict[str, Study] = {s.name: s for s in (
    Study("points", "num_points", (1, 2, 4, 8, 16), ("distractors",), 8,
          "accuracy levels off after N = 8 sampled points per query"),
    Study("subclips", "num_subclips", (1, 2, 4, 8), ("back_and_forth",), 4,
          "with T = 16, B = 4 sub-clips (T' = 4) is best"),
    Study("attention", "attention", ("dst", "dms", "dst_dms"), ("large_object",), "dst_dms",
          "D-ST-A and D-MS-A together beat either alone"),
    Study("fusion", "fusion", ("mixer", "mlp"), ("large_object",), "mixer",
          "the MLP-Mixer fusion beats the MLP fusion"),
)}


@dataclass(frozen=True)
class PaperStudies:
    """What to run: the studies, seeds and the data and training sizes of the motion
    benchmark. `model_options` go to every model (the smoke test makes it smaller)."""

    out: str = "bench_out/paper"
    studies: tuple[Study, ...] = tuple(STUDIES.values())
    seeds: tuple[int, ...] = (0, 1, 2)
    train_per_class: int = 16
    val_per_class: int = 8
    epochs: int = 10
    size: int = 64
    num_frames: int = 16
    model: str = "dvt_tiny"
    model_options: dict = field(default_factory=dict)
    jobs: int = 2
    data_dir: str | None = None  # default: out/data; bench_out/motion/data shares the stores

    def __post_init__(self) -> None:
        for study in self.studies:
            unknown = [g for g in study.generators if g not in GENERATORS]
            if study.factor not in DEFAULTS or unknown:
                raise InputError(f"study {study.name}: factor must be one of "
                                 f"{', '.join(DEFAULTS)} and generators of the motion suite "
                                 f"({', '.join(GENERATORS)}); got {study.factor!r}, {unknown}")

    def benchmark(self) -> MotionBenchmark:
        """The motion benchmark these studies run on (its data, sizes and training)."""
        return MotionBenchmark(out=self.out, cues=(STUDY_CUE,), seeds=self.seeds,
                               train_per_class=self.train_per_class,
                               val_per_class=self.val_per_class, epochs=self.epochs,
                               size=self.size, num_frames=self.num_frames, model=self.model,
                               model_options=dict(self.model_options), jobs=self.jobs,
                               data_dir=self.data_dir, prep_cues=PREP_CUES)


def select_studies(names: Sequence[str]) -> tuple[Study, ...]:
    """STUDIES by name; InputError (one line) for an unknown one."""
    unknown = [n for n in names if n not in STUDIES]
    if unknown:
        raise InputError(f"unknown stud{'y' if len(unknown) == 1 else 'ies'} "
                         f"{', '.join(unknown)}; choose from {', '.join(STUDIES)}")
    return tuple(STUDIES[n] for n in names)


def run_study_job(bench: MotionBenchmark, generator: str, seed: int,
                  studies: Sequence[Study]) -> list[dict]:
    """Every study on one generator and seed, one after another in this process (runs they
    share are trained once). Returns a row per (study, value)."""
    base = job_config(bench, generator, seed)
    rows = []
    for study in studies:
        for row in run_ablation(base, study.grid(), seeds=[seed], out_dir=base.out,
                                num_clips=1, num_crops=1):
            rows.append({"study": study.name, "generator": generator,
                         "value": row[study.factor], "seed": seed, "top1": row["top1"]})
    return rows


def run_paper_studies(paper: PaperStudies, *, echo: Callable[[str], None] = print
                      ) -> list[dict]:
    """Every job of `paper` (one per generator and seed, `paper.jobs` at a time), then the
    reports in `paper.out`. Returns a row per run."""
    os.makedirs(paper.out, exist_ok=True)
    bench = paper.benchmark()
    generators = list(dict.fromkeys(g for s in paper.studies for g in s.generators))
    jobs = [(g, s) for s in paper.seeds for g in generators]
    rows: list[dict] = []
    with ProcessPoolExecutor(max_workers=paper.jobs) as pool:
        futures = {pool.submit(run_study_job, bench, g, s,
                               [st for st in paper.studies if g in st.generators]): (g, s)
                   for g, s in jobs}
        for future, (generator, seed) in futures.items():
            job_rows = future.result()
            rows.extend(job_rows)
            echo(f"  {generator} seed {seed}: " + ", ".join(
                f"{r['study']} {r['value']} {100 * r['top1']:.0f}%" for r in job_rows))
    write_reports(rows, paper)
    return rows


# ---- reports ----------------------------------------------------------------------------


def summarise(rows: Sequence[dict]) -> dict[tuple, tuple[float, float, int]]:
    """(study, generator, value) -> (mean top-1, std over seeds (ddof 0), seeds)."""
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        groups.setdefault((row["study"], row["generator"], row["value"]), []).append(
            row["top1"])
    return {k: (float(np.mean(v)), float(np.std(v)), len(v)) for k, v in groups.items()}


def margin(a: tuple[float, float, int], b: tuple[float, float, int], val_videos: int) -> float:
    """The smallest difference of two means (fractions) this study calls real: two standard
    errors of the difference over seeds (sample std), at least one held-out video."""
    n = max(1, min(a[2], b[2]))
    correction = n / (n - 1) if n > 1 else 1.0
    error = math.sqrt((a[1] ** 2 + b[1] ** 2) * correction / n)
    return max(2 * error, 1.0 / val_videos)


def _fmt(entry: tuple[float, float, int]) -> str:
    return f"{100 * entry[0]:.1f} ± {100 * entry[1]:.1f}"


def verdict(study: Study, table: dict[tuple, tuple[float, float, int]], generator: str,
            val_videos: int) -> str:
    """One line: holds / does not hold / cannot tell at this scale, with the numbers."""
    cells = {v: table[(study.name, generator, v)] for v in study.values
             if (study.name, generator, v) in table}
    if study.best not in cells or len(cells) < 2:
        return "cannot tell: the runs are missing"
    best = cells[study.best]

    def compare(value) -> int:  # +1: best is better than value, -1: worse, 0: within noise
        other = cells[value]
        gap = best[0] - other[0]
        return 0 if abs(gap) <= margin(best, other, val_videos) else (1 if gap > 0 else -1)

    name = study.factor
    said = f"{name}={study.best} {_fmt(best)}"
    if study.name == "points":
        larger = [v for v in cells if v > study.best]
        smaller = [v for v in cells if v < study.best]
        worse_above = [v for v in larger if compare(v) < 0]
        if worse_above:
            v = worse_above[0]
            return (f"does not hold: N={v} {_fmt(cells[v])} beats {said} by more than the "
                    "noise")
        gains = [v for v in smaller if compare(v) > 0]
        if gains:
            v = min(gains)
            return (f"holds: {said} beats N={v} {_fmt(cells[v])}, and more points give no "
                    "gain beyond the noise" + (f" (N={larger[0]} {_fmt(cells[larger[0]])})"
                                               if larger else ""))
        return (f"cannot tell at this scale: every N is within the noise of {said} "
                f"(N={min(cells)} {_fmt(cells[min(cells)])})")
    others = [v for v in cells if v != study.best]
    beaten_by = [v for v in others if compare(v) < 0]
    beats = [v for v in others if compare(v) > 0]
    listing = ", ".join(f"{name}={v} {_fmt(cells[v])}" for v in others)
    if beaten_by:
        return f"does not hold: {said} against {listing}"
    if len(beats) == len(others):
        return f"holds: {said} beats {listing}"
    return f"cannot tell at this scale: {said} against {listing} (within the noise)"


def format_report(rows: Sequence[dict], paper: PaperStudies) -> str:
    """Markdown: per study a row per value, a column per generator, chance, the verdict."""
    table = summarise(rows)
    val_videos = min(paper.val_per_class * len(GENERATORS[g].classes)
                     for s in paper.studies for g in s.generators)
    seeds = max((n for _, _, n in table.values()), default=0)
    lines = [f"# The paper's findings on the motion suite: {paper.model}, cue {STUDY_CUE}, "
             f"{paper.epochs} epochs, {paper.train_per_class} training / "
             f"{paper.val_per_class} held-out videos per class, {paper.size}x{paper.size}, "
             f"{paper.num_frames} frames, {seeds} seed(s)", "",
             "Held-out top-1 (%), mean ± std over seeds; the other fields at "
             + ", ".join(f"{k}={v}" for k, v in DEFAULTS.items()) + "."
             + (f" Model options: {paper.model_options}." if paper.model_options else ""),
             "A difference counts when it is more than two standard errors over seeds and "
             "at least one held-out video."]
    for study in paper.studies:
        lines += ["", f"## {study.name}: {study.claim}", "",
                  f"| {study.factor} | " + " | ".join(study.generators) + " |",
                  "| --- | " + " | ".join("---" for _ in study.generators) + " |",
                  "| chance | " + " | ".join(f"{100 / len(GENERATORS[g].classes):.0f}"
                                           for g in study.generators) + " |"]
        for value in study.values:
            cells = [_fmt(table[(study.name, g, value)]) if (study.name, g, value) in table
                     else "–" for g in study.generators]
            lines.append(f"| {value} | " + " | ".join(cells) + " |")
        lines.append("")
        for generator in study.generators:
            lines.append(f"- {generator}: {verdict(study, table, generator, val_videos)}")
    return "\n".join(lines) + "\n"


def write_reports(rows: Sequence[dict], paper: PaperStudies) -> None:
    with open(os.path.join(paper.out, "paper_studies.csv"), "w", newline="",
              encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["study", "generator", "value", "seed", "top1"])
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: (r["study"], r["generator"],
                                                     str(r["value"]), r["seed"])))
    with open(os.path.join(paper.out, "paper_studies.md"), "w", encoding="utf-8") as handle:
        handle.write(format_report(rows, paper))
    for study in paper.studies:
        plot(rows, study, os.path.join(paper.out, f"paper_{study.name}.png"))


def plot(rows: Sequence[dict], study: Study, path: str) -> None:
    """Mean top-1 against the factor's values (a line per generator, std error bars; bars
    for a factor that is not a number), the paper's choice marked, chance dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = summarise(rows)
    numeric = all(isinstance(v, int) for v in study.values)
    positions = np.arange(len(study.values))
    figure, axes = plt.subplots(figsize=(1.1 * len(study.values) + 2.5, 3.5))
    width = 0.8 / len(study.generators)
    for i, generator in enumerate(study.generators):
        entries = [table.get((study.name, generator, v), (np.nan, np.nan, 0))
                   for v in study.values]
        means = [100 * e[0] for e in entries]
        stds = [100 * e[1] for e in entries]
        if numeric:
            axes.errorbar(positions, means, yerr=stds, marker="o", capsize=3, label=generator)
        else:
            axes.bar(positions + (i - (len(study.generators) - 1) / 2) * width, means, width,
                     yerr=stds, capsize=3, label=generator)
        axes.axhline(100 / len(GENERATORS[generator].classes), color="black",
                     linestyle="dashed", linewidth=1, label="chance" if i == 0 else None)
    best = study.values.index(study.best)
    axes.axvline(best, color="grey", linestyle="dotted", linewidth=1, label="paper's choice")
    axes.set_xticks(positions, [str(v) for v in study.values])
    axes.set_xlabel(study.factor)
    axes.set_ylabel("held-out top-1 (%)")
    axes.set_ylim(0, 105)
    axes.set_title(study.claim, fontsize=9)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)

