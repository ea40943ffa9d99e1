"""From command-line inputs to (video id, path) pairs (docs/design.md §4, video ids)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dvt_prep.errors import InputError

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".mpg", ".mpeg", ".ts", ".wmv",
    ".3gp", ".264", ".h264", ".ogv",
})
LIST_EXTENSIONS = frozenset({".txt", ".csv"})


@dataclass(frozen=True)
class VideoInput:
    """One video to prep: its id in the store and the file it is read from."""

    video_id: str
    path: str


def _relative_id(path: Path, root: Path) -> str:
    relative = PurePosixPath(*path.resolve().relative_to(root.resolve()).parts)
    return str(relative.with_suffix(""))


def _from_directory(directory: Path) -> list[VideoInput]:
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            if path.suffix.lower() in VIDEO_EXTENSIONS:
                found.append(VideoInput(_relative_id(path, directory), str(path)))
    return found


KINETICS_COLUMNS = frozenset({"youtube_id", "time_start", "time_end"})


def kinetics_video_id(youtube_id: str, time_start: str, time_end: str) -> str:
    """The file stem Kinetics downloaders use: `{youtube_id}_{start:06d}_{end:06d}`."""
    return f"{youtube_id}_{int(float(time_start)):06d}_{int(float(time_end)):06d}"


def _from_kinetics_csv(rows: list[dict], root: Path) -> list[VideoInput]:
    """Kinetics annotations (`label,youtube_id,time_start,time_end,split`): the video
    `{id}.mp4` directly under `root`, or under `root/<label>/` (both layouts are common); a
    file in neither place fails as that video."""
    found = []
    for row in rows:
        video_id = kinetics_video_id(row["youtube_id"], row["time_start"], row["time_end"])
        candidates = [root / f"{video_id}.mp4"]
        if row.get("label"):
            candidates.append(root / row["label"] / f"{video_id}.mp4")
            candidates.append(root / row["label"].replace(" ", "_") / f"{video_id}.mp4")
        path = next((c for c in candidates if c.exists()), candidates[0])
        found.append(VideoInput(video_id, str(path)))
    return found


def _list_entries(list_file: Path) -> list[str]:
    text = list_file.read_text(encoding="utf-8", errors="replace")
    if list_file.suffix.lower() == ".csv":
        rows = [row for row in csv.reader(text.splitlines()) if row and row[0].strip()]
        header = [cell.strip().lower() for cell in rows[0]] if rows else []
        column = next((header.index(n) for n in ("path", "video", "filename", "file")
                       if n in header), None)
        if column is not None:
            return [row[column].strip() for row in rows[1:] if len(row) > column]
        return [row[0].strip() for row in rows]
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _from_list(list_file: Path, root: Path | None = None) -> list[VideoInput]:
    if list_file.suffix.lower() == ".csv":
        with open(list_file, newline="", encoding="utf-8", errors="replace") as handle:
            rows = list(csv.DictReader(handle))
        if rows and KINETICS_COLUMNS <= set(rows[0]):
            return _from_kinetics_csv(rows, root or list_file.parent)
    root = root or list_file.parent
    found = []
    for entry in _list_entries(list_file):
        path = Path(entry) if os.path.isabs(entry) else root / entry
        try:
            video_id = _relative_id(path, root)
        except ValueError:  # outside the list's folder: fall back to the stem
            video_id = path.stem
        found.append(VideoInput(video_id, str(path)))
    return found


def collect_inputs(inputs: list[str], *, root: str | None = None) -> list[VideoInput]:
    """Expand files, directories, .txt/.csv lists and Kinetics annotation CSVs into videos with
    unique ids. `root`: the folder that list entries (and Kinetics ids) are relative to
    (default: the list's own folder).

    Raises InputError for a missing input or for two files that map to one id.
    Files named in a list are not checked here: a missing one fails as that video.
    """
    videos: list[VideoInput] = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise InputError(f"{item}: no such file or directory; check the path")
        if path.is_dir():
            videos.extend(_from_directory(path))
        elif path.suffix.lower() in LIST_EXTENSIONS:
            videos.extend(_from_list(path, Path(root) if root else None))
        else:
            videos.append(VideoInput(path.stem, str(path)))
    by_id: dict[str, str] = {}
    unique = []
    for video in videos:
        seen = by_id.get(video.video_id)
        if seen is None:
            by_id[video.video_id] = video.path
            unique.append(video)
        elif os.path.abspath(seen) != os.path.abspath(video.path):
            raise InputError(f"two inputs map to the video id {video.video_id!r}: {seen} and "
                             f"{video.path}; rename one or prep them into separate stores")
    return unique
