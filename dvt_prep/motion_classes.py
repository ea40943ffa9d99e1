"""A synthetic action dataset in which appearance carries no label: each class is a motion.

Every video is a textured object on a textured background, both drawn at random per video (so
colour and texture say nothing about the class); the class decides only how the object moves:
a direction, a rotation, a zoom, or a back-and-forth swing. Used by `dvt demo` and the tests.
"""

from __future__ import annotations

import math
import os

import cv2
import numpy as np

from dvt_prep.synthetic import texture, write_video

MOTION_CLASSES = ("right", "left", "up", "down", "rotate_cw", "rotate_ccw", "zoom_in",
                  "swing")


def _pose(name: str, t: int, speed: float) -> tuple[float, float, float, float]:
    """(dx, dy, angle in degrees, scale) of the object at frame t."""
    if name in ("right", "left", "up", "down"):
        sign = 1 if name in ("right", "down") else -1
        return (sign * speed * t, 0.0, 0.0, 1.0) if name in ("right", "left") \
            else (0.0, sign * speed * t, 0.0, 1.0)
    if name in ("rotate_cw", "rotate_ccw"):
        return 0.0, 0.0, (-1 if name == "rotate_cw" else 1) * 4.0 * speed * t, 1.0
    if name == "zoom_in":
        return 0.0, 0.0, 0.0, (1.0 + 0.02 * speed) ** t
    if name == "swing":
        return 4.0 * speed * math.sin(2 * math.pi * t / 8), 0.0, 0.0, 1.0
    raise ValueError(f"unknown motion class {name!r}")


def motion_video(name: str, *, size: int = 64, num_frames: int = 16, seed: int = 0
                 ) -> np.ndarray:
    """Frames (T, size, size, 3) uint8 of one video of class `name`."""
    rng = np.random.default_rng(seed)
    background = texture(size, size, seed=int(rng.integers(1 << 30)))
    object_size = int(size * rng.uniform(0.55, 0.7))
    pattern = texture(object_size, object_size, seed=int(rng.integers(1 << 30)))
    pattern = np.clip(pattern.astype(np.int16) + rng.integers(-60, 60, size=3), 0, 255)
    pattern = pattern.astype(np.uint8)
    mask = np.zeros((object_size, object_size), np.float32)
    cv2.circle(mask, (object_size // 2, object_size // 2), object_size // 2 - 1, 1.0, -1)
    speed = rng.uniform(1.0, 1.6)
    limit = size * 0.06
    centre = np.array([size / 2, size / 2]) + rng.uniform(-limit, limit, size=2)
    if name in ("right", "left", "up", "down"):  # start where the path stays in view
        direction = {"right": (-1, 0), "left": (1, 0), "up": (0, 1), "down": (0, -1)}[name]
        centre += np.array(direction) * speed * (num_frames - 1) / 2
    frames = []
    for t in range(num_frames):
        dx, dy, angle, scale = _pose(name, t, speed)
        matrix = cv2.getRotationMatrix2D((object_size / 2, object_size / 2), angle, scale)
        matrix[:, 2] += np.array([centre[0] + dx, centre[1] + dy]) - object_size / 2
        warped = cv2.warpAffine(pattern, matrix, (size, size), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(mask, matrix, (size, size), flags=cv2.INTER_LINEAR)[..., None]
        frames.append((alpha * warped + (1 - alpha) * background).astype(np.uint8))
    return np.stack(frames)


def write_motion_dataset(folder: str, *, videos_per_class: int, size: int = 64,
                         num_frames: int = 16, seed: int = 0, split: str = "train"
                         ) -> tuple[list[str], str]:
    """Videos `folder/<split>/<class>_<n>.mp4` and the label CSV `folder/<split>.csv`
    (`video_id,label`, ids relative to `folder`). Returns (video paths, CSV path)."""
    os.makedirs(os.path.join(folder, split), exist_ok=True)
    paths, rows = [], []
    for class_index, name in enumerate(MOTION_CLASSES):
        for n in range(videos_per_class):
            video_seed = seed * 1_000_003 + (split == "val") * 500_009 + class_index * 10_007 + n
            frames = motion_video(name, size=size, num_frames=num_frames, seed=video_seed)
            path = os.path.join(folder, split, f"{name}_{n:03d}.mp4")
            write_video(path, frames, crf=18)
            paths.append(path)
            rows.append(f"{split}/{name}_{n:03d},{name}")
    labels = os.path.join(folder, f"{split}.csv")
    with open(labels, "w", encoding="utf-8") as handle:
        handle.write("video_id,label\n" + "\n".join(rows) + "\n")
    return paths, labels
