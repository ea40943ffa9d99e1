"""A run directory's records: `config.yaml`, `metrics.jsonl`, `metrics.csv`, TensorBoard events
(when `tensorboard` is installed). One row per optimiser step and one per epoch."""

from __future__ import annotations

import csv
import json
import os
import time

import yaml

COLUMNS = ("kind", "time", "epoch", "step", "loss", "lr", "grad_norm", "clips_per_s",
           "data_wait", "train_loss", "val_loss", "val_top1", "val_top5")


class MetricsLog:
    def __init__(self, run_dir: str, *, enabled: bool = True,
                 truncate_after_step: int | None = None) -> None:
        """truncate_after_step: on resume, drop rows written after the checkpoint's step (a run
        killed between a log line and its checkpoint would otherwise count them twice)."""
        self.enabled = enabled
        self.jsonl = os.path.join(run_dir, "metrics.jsonl")
        self.csv = os.path.join(run_dir, "metrics.csv")
        self._board = None
        if not enabled:
            return
        os.makedirs(run_dir, exist_ok=True)
        rows = self.read(run_dir) if truncate_after_step is not None else []
        rows = [r for r in rows if r.get("step", 0) <= (truncate_after_step or 0)]
        with open(self.jsonl, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in rows)
        with open(self.csv, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        try:
            from torch.utils.tensorboard import SummaryWriter
            self._board = SummaryWriter(os.path.join(run_dir, "tensorboard"))
        except ImportError:  # tensorboard is optional
            self._board = None

    @staticmethod
    def read(run_dir: str) -> list[dict]:
        path = os.path.join(run_dir, "metrics.jsonl")
        if not os.path.isfile(path):
            return []
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def write_config(self, train_config: dict, model_config: dict, class_names: list[str]
                     ) -> None:
        if not self.enabled:
            return
        path = os.path.join(os.path.dirname(self.jsonl), "config.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump({**train_config, "model_config": model_config,
                            "class_names": class_names}, handle, sort_keys=False)

    def _write(self, row: dict) -> None:
        if not self.enabled:
            return
        row = {"time": round(time.time(), 3), **row}
        with open(self.jsonl, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        with open(self.csv, "a", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, COLUMNS, extrasaction="ignore").writerow(row)
        if self._board is not None:
            for key, value in row.items():
                if key not in ("kind", "time", "epoch", "step") and value is not None:
                    self._board.add_scalar(f"{row['kind']}/{key}", value, row["step"])

    def step(self, **values) -> None:
        self._write({"kind": "step", **values})

    def epoch(self, **values) -> None:
        self._write({"kind": "epoch", **values})

    def close(self) -> None:
        if self._board is not None:
            self._board.close()
