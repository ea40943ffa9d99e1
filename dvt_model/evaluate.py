"""`evaluate_run`: a trained run on `test` views (softmax averaged per video), top-1/top-5,
per-class accuracy, a confusion-matrix PNG and `eval.json` in the run directory."""

from __future__ import annotations

import json
import os

import torch

from dvt_model.data import VideoClipDataset, read_labels
from dvt_model.predict import accuracy, predict
from dvt_model.train import load_run, setup_distributed
from dvt_prep.errors import InputError


def evaluate_run(run_dir: str, *, store: list[str] | None = None, labels: str | None = None,
                 num_clips: int = 4, num_crops: int = 3, batch_size: int | None = None,
                 num_workers: int | None = None, device: str = "auto",
                 checkpoint: str = "best.pt", trust_checkpoint: bool = False) -> dict:
    """Evaluate a run. `store`/`labels` default to the run's validation data;
    trust_checkpoint: read a checkpoint that needs the full unpickler."""
    model, saved = load_run(run_dir, checkpoint, trust_checkpoint=trust_checkpoint)
    config = saved["config"]
    store = store or config.get("val_store") or config["store"]
    labels = labels or config.get("val_labels")
    if not labels:
        raise InputError(f"{run_dir}: the run has no validation labels; give --labels")
    class_names = tuple(saved["class_names"])
    label_set = read_labels(labels, class_names=class_names)
    torch_device, rank, _ = setup_distributed(device)
    dataset = VideoClipDataset(store, labels=label_set, cues=model.inputs,
                               num_frames=model.config.num_frames,
                               frame_stride=config.get("frame_stride", 1),
                               img_size=model.config.img_size, mode="test",
                               num_clips=num_clips, num_crops=num_crops, seed=config["seed"],
                               on_missing="skip" if config.get("skip_missing") else "error")
    result = predict(model.to(torch_device), dataset,
                     batch_size=batch_size or config["batch_size"],
                     num_workers=config["num_workers"] if num_workers is None else num_workers,
                     device=torch_device, amp=config.get("amp", True) and
                     torch_device.type == "cuda")
    scores = accuracy(result["probs"], result["labels"], len(class_names))
    summary = {"run": run_dir, "checkpoint": saved.get("step"), "labels": labels,
               "views": {"clips": num_clips, "crops": num_crops}, "loss": result["loss"],
               "top1": scores["top1"], "top5": scores["top5"], "videos": scores["videos"],
               "per_class": {class_names[c]: a for c, a in scores.get("per_class", {}).items()},
               "confusion": scores.get("confusion"), "class_names": list(class_names)}
    if rank == 0:
        with open(os.path.join(run_dir, "eval.json"), "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2)
        if summary["confusion"] is not None:
            plot_confusion(summary["confusion"], class_names,
                           os.path.join(run_dir, "confusion.png"))
    return summary


def plot_confusion(confusion: list[list[int]], class_names: tuple[str, ...], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = torch.tensor(confusion, dtype=torch.float64)
    rates = matrix / matrix.sum(1, keepdim=True).clamp(min=1)
    size = max(4.0, 0.35 * len(class_names) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    if len(class_names) <= 40:
        axes.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=7)
        axes.set_yticks(range(len(class_names)), class_names, fontsize=7)
        for i in range(len(class_names)):
            for j in range(len(class_names)):
                if matrix[i, j]:
                    axes.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=6,
                              color="white" if rates[i, j] > 0.5 else "black")
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
