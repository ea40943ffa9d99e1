"""Running a model over a dataset: per-video class probabilities (views averaged) and accuracy."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader

from dvt_model.data import VideoClipDataset, collate
from dvt_prep.threads import single_thread_worker


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}


@torch.no_grad()
def predict(model: torch.nn.Module, dataset: VideoClipDataset, *, batch_size: int,
            num_workers: int, device: torch.device, amp: bool = False) -> dict:
    """Softmax averaged over each video's views (padded samples dropped), gathered from every
    rank. Returns {"probs": {video_id: (C,) float64}, "labels": {video_id: int}, "loss": mean
    cross-entropy over views}."""
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                        collate_fn=collate, worker_init_fn=single_thread_worker)
    sums: dict[str, np.ndarray] = defaultdict(lambda: 0.0)
    counts: dict[str, int] = defaultdict(int)
    labels: dict[str, int] = {}
    loss_sum, loss_count = 0.0, 0
    for batch in loader:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(to_device(batch, device)).float()
        probs = logits.softmax(-1).cpu().double().numpy()
        keep = ~batch["padded"]
        target = batch["label"].to(device)
        known = keep.to(device) & (target >= 0)
        if known.any():
            loss_sum += float(F.cross_entropy(logits[known], target[known], reduction="sum"))
            loss_count += int(known.sum())
        for i, video_id in enumerate(batch["video_id"]):
            if keep[i]:
                sums[video_id] = sums[video_id] + probs[i]
                counts[video_id] += 1
                labels[video_id] = int(batch["label"][i])
    result = {"probs": {v: sums[v] / counts[v] for v in sums}, "labels": labels,
              "loss_sum": loss_sum, "loss_count": loss_count}
    if dist.is_available() and dist.is_initialized():
        gathered = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, result)
        result = _merge(gathered)
    model.train()
    return {"probs": result["probs"], "labels": result["labels"],
            "loss": result["loss_sum"] / max(result["loss_count"], 1)}


def _merge(parts: list[dict]) -> dict:
    """Views of one video may land on several ranks: average them all (weights = views)."""
    merged = {"probs": {}, "labels": {}, "loss_sum": 0.0, "loss_count": 0}
    for part in parts:
        for video_id, probs in part["probs"].items():
            merged["probs"].setdefault(video_id, []).append(probs)
        merged["labels"].update(part["labels"])
        merged["loss_sum"] += part["loss_sum"]
        merged["loss_count"] += part["loss_count"]
    merged["probs"] = {v: np.mean(p, axis=0) for v, p in merged["probs"].items()}
    return merged


def accuracy(probs: dict[str, np.ndarray], labels: dict[str, int], num_classes: int) -> dict:
    """Top-1, top-5 (or top-C for fewer classes), per-class accuracy and the confusion matrix
    (rows: true class, columns: predicted) over the labelled videos."""
    ids = [v for v in probs if labels.get(v, -1) >= 0]
    if not ids:
        return {"top1": float("nan"), "top5": float("nan"), "videos": 0}
    scores = np.stack([probs[v] for v in ids])
    truth = np.array([labels[v] for v in ids])
    ranked = np.argsort(-scores, axis=1)
    k = min(5, num_classes)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (truth, ranked[:, 0]), 1)
    per_class = {c: float(confusion[c, c] / confusion[c].sum())
                 for c in range(num_classes) if confusion[c].sum()}
    return {"top1": float((ranked[:, 0] == truth).mean()),
            "top5": float((ranked[:, :k] == truth[:, None]).any(1).mean()),  # top-C below 5
            "videos": len(ids), "per_class": per_class, "confusion": confusion.tolist()}
