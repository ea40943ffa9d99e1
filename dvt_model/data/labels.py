"""Label files: `video_id,label` CSV, the Kinetics annotation CSV, Something-Something-V2 JSON.

Every format becomes a `Labels`: video id -> class index, and the class names in index order.
Class names map to indices in sorted order (docs/design.md §7) unless the format fixes the indices
(integer labels, SSv2's labels file).
"""

from __future__ import annotations

import csv
import glob
import json
import os
from dataclasses import dataclass

from dvt_prep.errors import InputError
from dvt_prep.inputs import KINETICS_COLUMNS, kinetics_video_id

UNLABELLED = -1


@dataclass(frozen=True)
class Labels:
    """video id -> class index (UNLABELLED for a split without labels), and the class names."""

    by_video: dict[str, int]
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def read_labels(path: str | os.PathLike, *, class_names: tuple[str, ...] | None = None) -> Labels:
    """Read a label file of any supported format (chosen by extension and CSV header).

    class_names: a fixed class list (a run's, for evaluation); names outside it are an error.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"label file {path} does not exist; give a `video_id,label` CSV, a "
                         "Kinetics annotation CSV or a Something-Something-V2 JSON")
    if path.lower().endswith(".json"):
        by_name = _read_ssv2(path)
        if class_names is None:
            class_names = _ssv2_classes(path)
    else:
        by_name = _read_csv(path)
    return _index(by_name, path, class_names)


def _read_csv(path: str) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
        header = set(rows[0]) if rows else set()
    if KINETICS_COLUMNS <= header:
        return {kinetics_video_id(r["youtube_id"], r["time_start"], r["time_end"]):
                (r.get("label") or "").strip() for r in rows}
    if {"video_id", "label"} <= header:
        return {r["video_id"].strip(): r["label"].strip() for r in rows}
    raise InputError(f"{path}: unknown label CSV (header {sorted(header)}); expected "
                     "`video_id,label` or Kinetics' `label,youtube_id,time_start,time_end,split`")


def _read_ssv2(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as handle:
            entries = json.load(handle)
        return {str(e["id"]): _ssv2_template(e.get("template", "")) for e in entries}
    except (ValueError, TypeError, KeyError) as error:
        raise InputError(f"{path}: not a Something-Something-V2 split list (a JSON list of "
                         f"{{'id', 'template', ...}}): {error}") from None


def _ssv2_template(template: str) -> str:
    return template.replace("[", "").replace("]", "").strip()


def _ssv2_classes(split_path: str) -> tuple[str, ...] | None:
    """Class names in the order of the labels file beside the split list, if there is one."""
    folder = os.path.dirname(os.path.abspath(split_path))
    candidates = sorted(glob.glob(os.path.join(folder, "*labels.json")))
    if not candidates:
        return None
    with open(candidates[0], encoding="utf-8") as handle:
        template_to_index = json.load(handle)
    ordered = sorted(template_to_index.items(), key=lambda item: int(item[1]))
    return tuple(_ssv2_template(name) for name, _ in ordered)


def _index(by_name: dict[str, str], path: str, class_names: tuple[str, ...] | None) -> Labels:
    names = {label for label in by_name.values() if label != ""}
    if class_names is None and names and all(label.lstrip("-").isdigit() for label in names):
        indices = {v: int(label) if label != "" else UNLABELLED for v, label in by_name.items()}
        num_classes = max(indices.values()) + 1
        return Labels(indices, tuple(str(i) for i in range(num_classes)))
    if class_names is None:
        class_names = tuple(sorted(names))
    position = {name: i for i, name in enumerate(class_names)}
    unknown = sorted(names - set(position))
    if unknown:
        raise InputError(f"{path}: {len(unknown)} label(s) are not among the "
                         f"{len(class_names)} classes, e.g. {unknown[0]!r}")
    return Labels({v: position[label] if label != "" else UNLABELLED
                   for v, label in by_name.items()}, tuple(class_names))
