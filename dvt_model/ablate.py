"""`run_ablation`: one training run per combination of a grid (and seed), same data and seed,
then `ablation.md`, `ablation.csv` and `ablation.png`. Finished runs are not retrained; an
interrupted one resumes from its last checkpoint."""

from __future__ import annotations

import csv
import itertools
import json
import os
from dataclasses import fields, replace

import numpy as np

from dvt_model.config import ModelConfig
from dvt_model.evaluate import evaluate_run
from dvt_model.train import CHECKPOINT, train
from dvt_model.train_config import TrainConfig
from dvt_prep.atomic import write_text_atomically
from dvt_prep.errors import InputError

RESULT = "result.json"
TRAIN_KEYS = {f.name for f in fields(TrainConfig)} - {"model_options", "out", "store"}
MODEL_KEYS = {f.name for f in fields(ModelConfig)} - {"num_classes"}


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def parse_grid(specs: list[str]) -> dict[str, list]:
    """["cue=md_rgbr,none", "num_points=1,8"] -> {"cue": ["md_rgbr", "none"],
    "num_points": [1, 8]}."""
    grid = {}
    for spec in specs:
        key, _, values = spec.partition("=")
        key = key.strip().replace("-", "_")
        if not values or key not in TRAIN_KEYS | MODEL_KEYS:
            raise InputError(f"--grid {spec!r}: expected KEY=V1,V2,... with KEY one of "
                             f"{', '.join(sorted(TRAIN_KEYS | MODEL_KEYS))}")
        grid[key] = [_value(v.strip()) for v in values.split(",") if v.strip()]
    return grid


def combinations(grid: dict[str, list]) -> list[dict]:
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def run_config(base: TrainConfig, combination: dict, seed: int, out_dir: str) -> TrainConfig:
    """The training config of one run: the base with the combination and seed applied."""
    train_args = {k: v for k, v in combination.items() if k in TRAIN_KEYS}
    model_args = {k: v for k, v in combination.items() if k not in TRAIN_KEYS}
    name = ",".join(f"{k}={v}" for k, v in combination.items()) or "base"
    return replace(base, **train_args, seed=seed,
                   model_options={**base.model_options, **model_args},
                   out=os.path.join(out_dir, "runs", f"{name},seed={seed}"))


def run_ablation(base: TrainConfig, grid: dict[str, list], *, seeds: list[int], out_dir: str,
                 num_clips: int = 4, num_crops: int = 3, on_run=None,
                 trust_checkpoint: bool = False, checkpoint: str = CHECKPOINT) -> list[dict]:
    """Train and evaluate every combination x seed; write the table, CSV and chart.
    on_run(name, status) is called as runs start ("train", "resume") or are skipped ("done");
    trust_checkpoint: resume runs whose checkpoints need the full unpickler. Each run is
    evaluated at `checkpoint`, by default the last epoch's: `best.pt` is picked on the same
    held-out labels, which would flatter every run (most a run at chance)."""
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for combination in combinations(grid):
        for seed in seeds:
            config = run_config(base, combination, seed, out_dir)
            config.validate()
            result_path = os.path.join(config.out, RESULT)
            name = os.path.basename(config.out)
            if os.path.isfile(result_path):
                if on_run:
                    on_run(name, "done")
                with open(result_path, encoding="utf-8") as handle:
                    rows.append(json.load(handle))
                continue
            resume = os.path.isfile(os.path.join(config.out, CHECKPOINT))
            if on_run:
                on_run(name, "resume" if resume else "train")
            train(replace(config, max_steps=None), resume=resume,
                  trust_checkpoint=trust_checkpoint)
            scores = evaluate_run(config.out, num_clips=num_clips, num_crops=num_crops,
                                  trust_checkpoint=trust_checkpoint, checkpoint=checkpoint)
            row = {"run": name, **combination, "seed": seed, "top1": scores["top1"],
                   "top5": scores["top5"], "videos": scores["videos"]}
            write_text_atomically(result_path, json.dumps(row))  # last: the run is finished
            rows.append(row)
    write_reports(rows, list(grid), out_dir, base)
    return rows


def summarise(rows: list[dict], keys: list[str]) -> list[dict]:
    """Mean and standard deviation of top-1/top-5 over seeds, per combination."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in keys), []).append(row)
    table = []
    for values, members in groups.items():
        top1 = np.array([m["top1"] for m in members])
        top5 = np.array([m["top5"] for m in members])
        table.append({**dict(zip(keys, values, strict=True)), "seeds": len(members),
                      "top1": float(top1.mean()), "top1_std": float(top1.std()),
                      "top5": float(top5.mean()), "top5_std": float(top5.std())})
    return table


def write_reports(rows: list[dict], keys: list[str], out_dir: str, base: TrainConfig) -> None:
    table = summarise(rows, keys)
    with open(os.path.join(out_dir, "ablation.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, [*keys, "seeds", "top1", "top1_std", "top5", "top5_std"])
        writer.writeheader()
        writer.writerows(table)
    seeds = max((r["seeds"] for r in table), default=1)
    lines = [f"# Ablation: {base.model}, {base.epochs} epochs, batch {base.batch_size}, "
             f"{seeds} seed(s)", "",
             "| " + " | ".join(keys) + " | top-1 (%) | top-5 (%) |",
             "|" + " --- |" * (len(keys) + 2)]
    for entry in table:
        cells = [str(entry[k]) for k in keys]
        for metric in ("top1", "top5"):
            spread = f" ± {100 * entry[metric + '_std']:.1f}" if seeds > 1 else ""
            cells.append(f"{100 * entry[metric]:.1f}{spread}")
        lines.append("| " + " | ".join(cells) + " |")
    with open(os.path.join(out_dir, "ablation.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    plot_bars(table, keys, os.path.join(out_dir, "ablation.png"), with_errors=seeds > 1)


def plot_bars(table: list[dict], keys: list[str], path: str, *, with_errors: bool) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [",".join(str(entry[k]) for k in keys) for entry in table]
    figure, axes = plt.subplots(figsize=(max(4.0, 0.9 * len(names) + 1.5), 3.5))
    axes.bar(range(len(names)), [100 * e["top1"] for e in table],
             yerr=[100 * e["top1_std"] for e in table] if with_errors else None,
             capsize=4, color="#4c72b0")
    axes.set_xticks(range(len(names)), names, rotation=30, ha="right")
    axes.set_ylabel("top-1 accuracy (%)")
    axes.set_ylim(0, 100)
    axes.set_title(", ".join(keys))
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
