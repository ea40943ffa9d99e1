"""Synthetic motion benchmark: generators of small labelled video sets with known motion.

Every generator draws textures, colours, sizes, speeds and start positions at random per video,
so that only what the generator says carries the label:

| generator | classes | what carries the label |
| --- | --- | --- |
| `small_object` | right, left, up, down | the direction of an object of 5-25% of the frame |
| `large_object` | rotate_cw, rotate_ccw, zoom_in, zoom_out | how an object of 40-60% moves |
| `distractors` | right, left, up, down | one object; two smaller ones drift at random |
| `camera_pan` | pan_right, pan_left, pan_up, pan_down | the whole scene moves (a camera pan) |
| `back_and_forth` | right_then_left, left_then_right, up_then_down, down_then_up | the order |
| `appearance` | red, green, blue, yellow | the object's colour; its motion is random |

Motion class names are those of the content on screen (`pan_right`: the scene moves right).
Speeds span 0.5-4 px/frame over the suite. Videos are encoded with PyAV's libx264 (CRF 18).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from dvt_prep.atomic import write_text_atomically
from dvt_prep.synthetic import texture, write_video

COLOURS = {"red": (230, 40, 40), "green": (40, 200, 60), "blue": (40, 70, 230),
           "yellow": (230, 220, 40)}


@dataclass(frozen=True)
class Pose:
    """Where an object is drawn in one frame: centre (x, y) in pixels, angle in degrees
    (counter-clockwise on screen, as OpenCV's), scale."""

    x: float
    y: float
    angle: float = 0.0
    scale: float = 1.0


@dataclass(frozen=True)
class Sprite:
    """A textured square or disc of `side` pixels with its mask (float32, 0..1)."""

    pixels: np.ndarray
    mask: np.ndarray

    @property
    def side(self) -> int:
        return self.pixels.shape[0]


def make_sprite(rng: np.random.Generator, side: int, *, colour: tuple[int, int, int] | None = None
                ) -> Sprite:
    """A random texture tinted at random (or in `colour`), square or disc at random."""
    side = max(4, int(round(side)))
    pattern = texture(side, side, seed=int(rng.integers(1 << 30))).astype(np.float32)
    if colour is None:
        pattern = pattern + rng.uniform(-70, 70, size=3)
    else:  # the class colour, its brightness modulated by the texture
        luminance = pattern.mean(-1, keepdims=True) / 255.0
        pattern = np.asarray(colour, np.float32) * (0.55 + 0.6 * luminance)
    mask = np.zeros((side, side), np.float32)
    if rng.random() < 0.5:
        mask[1:-1, 1:-1] = 1.0
    else:
        cv2.circle(mask, (side // 2, side // 2), side // 2 - 1, 1.0, -1)
    return Sprite(np.clip(pattern, 0, 255).astype(np.uint8), mask)


def paste(frame: np.ndarray, sprite: Sprite, pose: Pose) -> np.ndarray:
    """Draw `sprite` over `frame` (H, W, 3) uint8 at `pose`, bilinearly, with its mask."""
    height, width = frame.shape[:2]
    half = sprite.side / 2
    matrix = cv2.getRotationMatrix2D((half, half), pose.angle, pose.scale)
    matrix[:, 2] += np.array([pose.x - half, pose.y - half])
    warped = cv2.warpAffine(sprite.pixels, matrix, (width, height), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(sprite.mask, matrix, (width, height), flags=cv2.INTER_LINEAR)
    alpha = alpha[..., None]
    return (alpha * warped + (1 - alpha) * frame).astype(np.uint8)


def _background(rng: np.random.Generator, size: int, *, saturation: float = 1.0) -> np.ndarray:
    image = texture(size, size, seed=int(rng.integers(1 << 30))).astype(np.float32)
    grey = image.mean(-1, keepdims=True)
    return np.clip(grey + saturation * (image - grey), 0, 255).astype(np.uint8)


def _direction(name: str) -> np.ndarray:
    return np.array({"right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1)}[name],
                    np.float64)


def _linear_path(rng, name: str, size: int, frames: int, speed: float, margin: float
                 ) -> list[Pose]:
    """Constant velocity in direction `name`, started where the whole path stays in view."""
    step = _direction(name) * speed
    travel = step * (frames - 1)
    low = np.maximum(margin, margin - travel)
    high = np.minimum(size - margin, size - margin - travel)
    start = rng.uniform(low, np.maximum(low, high))
    return [Pose(*(start + step * t)) for t in range(frames)]


def _orbit_path(rng, clockwise: bool, size: int, frames: int, speed: float) -> list[Pose]:
    """A circle at `speed` px/frame; clockwise on screen (y down) means a growing angle."""
    radius = rng.uniform(0.12, 0.2) * size
    centre = size / 2 + rng.uniform(-0.08, 0.08, size=2) * size
    phase = rng.uniform(0, 2 * math.pi)
    omega = (1 if clockwise else -1) * speed / radius
    return [Pose(centre[0] + radius * math.cos(phase + omega * t),
                 centre[1] + radius * math.sin(phase + omega * t)) for t in range(frames)]


def _there_and_back(rng, first: str, size: int, frames: int, speed: float, margin: float
                    ) -> list[Pose]:
    """`first` for the first half of the clip, then back the other way."""
    step = _direction(first) * speed
    turn = frames // 2
    offsets = [step * (t if t <= turn else 2 * turn - t) for t in range(frames)]
    low = np.maximum(margin, margin - step * turn)
    high = np.minimum(size - margin, size - margin - step * turn)
    start = rng.uniform(low, np.maximum(low, high))
    return [Pose(*(start + o)) for o in offsets]


def _wander(rng, size: int, frames: int, margin: float) -> list[Pose]:
    """Drifting at random: a slow velocity (0.2-0.8 px/frame) that turns a little every frame,
    bouncing off the borders (no class motion)."""
    position = rng.uniform(margin, size - margin, size=2)
    heading, speed = rng.uniform(0, 2 * math.pi), rng.uniform(0.2, 0.8)
    poses = []
    for _ in range(frames):
        poses.append(Pose(*position))
        heading += rng.normal(0, 0.3)
        step = speed * np.array([math.cos(heading), math.sin(heading)])
        bounced = (position + step < margin) | (position + step > size - margin)
        step[bounced] *= -1
        heading = math.atan2(step[1], step[0])
        position = position + step
    return poses


def _object_side(rng, size: int, low: float, high: float) -> int:
    """An object covering an area fraction in [low, high] of the frame."""
    return int(round(size * math.sqrt(rng.uniform(low, high))))


def _render(rng, size: int, layers: list[tuple[Sprite, list[Pose]]], *,
            background: np.ndarray | None = None) -> np.ndarray:
    back = _background(rng, size) if background is None else background
    frames = []
    for t in range(len(layers[0][1])):
        frame = back.copy()
        for sprite, poses in layers:
            frame = paste(frame, sprite, poses[t])
        frames.append(frame)
    return np.stack(frames)


def small_object(name: str, rng: np.random.Generator, size: int, frames: int) -> np.ndarray:
    side = _object_side(rng, size, 0.05, 0.25)
    speed = rng.uniform(0.5, 2.5)
    poses = _linear_path(rng, name, size, frames, speed, side / 2)
    return _render(rng, size, [(make_sprite(rng, side), poses)])


def large_object(name: str, rng: np.random.Generator, size: int, frames: int) -> np.ndarray:
    side = _object_side(rng, size, 0.4, 0.6)
    centre = size / 2 + rng.uniform(-0.06, 0.06, size=2) * size
    rate = rng.uniform(0.5, 1.0)  # in units of about 3 px/frame at the object's edge
    poses = []
    for t in range(frames):
        if name in ("rotate_cw", "rotate_ccw"):  # OpenCV's angle is counter-clockwise
            angle = (-1 if name == "rotate_cw" else 1) * 8.0 * rate * t
            poses.append(Pose(*centre, angle=angle))
        else:
            grow = (1.0 + 0.04 * rate) ** (t if name == "zoom_in" else -t)
            poses.append(Pose(*centre, scale=grow * (1.0 if name == "zoom_in" else 1.4)))
    return _render(rng, size, [(make_sprite(rng, side), poses)])


def distractors(name: str, rng: np.random.Generator, size: int, frames: int) -> np.ndarray:
    side = _object_side(rng, size, 0.05, 0.12)
    target = _linear_path(rng, name, size, frames, rng.uniform(0.8, 2.5), side / 2)
    layers = [(make_sprite(rng, _object_side(rng, size, 0.03, 0.08)),
               _wander(rng, size, frames, side / 2)) for _ in range(2)]
    return _render(rng, size, layers + [(make_sprite(rng, side), target)])


def camera_pan(name: str, rng: np.random.Generator, size: int, frames: int) -> np.ndarray:
    speed = rng.uniform(1.0, 4.0)
    step = _direction(name.removeprefix("pan_")) * speed
    margin = int(math.ceil(speed * frames)) + 2
    scene = texture(size + 2 * margin, size + 2 * margin, seed=int(rng.integers(1 << 30)))
    for _ in range(3):  # a still scene: a few objects stuck to it
        sprite = make_sprite(rng, _object_side(rng, size, 0.03, 0.1))
        at = rng.uniform(margin, size + margin, size=2)
        scene = paste(scene, sprite, Pose(*at))
    out = []
    for t in range(frames):
        # content moves by `step` a frame: output(p) = scene(p + margin - step * t)
        shift = margin - step * t
        matrix = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
        out.append(cv2.warpAffine(scene, matrix, (size, size),
                                  flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP))
    return np.stack(out)


def back_and_forth(name: str, rng: np.random.Generator, size: int, frames: int) -> np.ndarray:
    side = _object_side(rng, size, 0.08, 0.2)
    speed = rng.uniform(1.0, 3.0)
    poses = _there_and_back(rng, name.split("_then_")[0], size, frames, speed, side / 2)
    return _render(rng, size, [(make_sprite(rng, side), poses)])


def appearance(name: str, rng: np.random.Generator, size: int, frames: int) -> np.ndarray:
    side = _object_side(rng, size, 0.08, 0.25)
    kind = rng.integers(3)
    speed = rng.uniform(0.5, 2.5)
    if kind == 0:
        poses = _linear_path(rng, str(rng.choice(["right", "left", "up", "down"])), size,
                             frames, speed, side / 2)
    elif kind == 1:
        poses = _orbit_path(rng, bool(rng.integers(2)), size, frames, speed)
    else:
        poses = _wander(rng, size, frames, side / 2)
    sprite = make_sprite(rng, side, colour=COLOURS[name])
    return _render(rng, size, [(sprite, poses)], background=_background(rng, size,
                                                                        saturation=0.6))


@dataclass(frozen=True)
class Generator:
    name: str
    classes: tuple[str, ...]
    render: Callable[[str, np.random.Generator, int, int], np.ndarray]
    motion: bool = True  # False: the appearance control, whose classes are not motions


GENERATORS: dict[str, Generator] = {g.name: g for g in (
    Generator("small_object", ("right", "left", "up", "down"), small_object),
    Generator("large_object", ("rotate_cw", "rotate_ccw", "zoom_in", "zoom_out"), large_object),
    Generator("distractors", ("right", "left", "up", "down"), distractors),
    Generator("camera_pan", ("pan_right", "pan_left", "pan_up", "pan_down"), camera_pan),
    Generator("back_and_forth", ("right_then_left", "left_then_right", "up_then_down",
                                 "down_then_up"), back_and_forth),
    Generator("appearance", tuple(COLOURS), appearance, motion=False),
)}


def video_seed(seed: int, split: str, class_index: int, number: int) -> int:
    """Each (seed, split, class, number) its own random stream: splits never share a video."""
    return int(np.random.SeedSequence([seed, {"train": 0, "val": 1, "test": 2}.get(split, 3),
                                       class_index, number]).generate_state(1)[0])


def generate_video(generator: str, label: str, *, seed: int, size: int = 64,
                   num_frames: int = 16) -> np.ndarray:
    """Frames (T, size, size, 3) uint8 of one video of class `label`."""
    return GENERATORS[generator].render(label, np.random.default_rng(seed), size, num_frames)


def write_split(folder: str, generator: str, *, split: str, videos_per_class: int,
                seed: int = 0, size: int = 64, num_frames: int = 16) -> tuple[list[str], str]:
    """Videos `folder/<split>/<class>_<n>.mp4` and the labels `folder/<split>.csv`
    (`video_id,label`, ids relative to `folder`). Returns (video paths, CSV path)."""
    spec = GENERATORS[generator]
    os.makedirs(os.path.join(folder, split), exist_ok=True)
    paths, rows = [], []
    for class_index, label in enumerate(spec.classes):
        for number in range(videos_per_class):
            frames = generate_video(generator, label, size=size, num_frames=num_frames,
                                    seed=video_seed(seed, split, class_index, number))
            path = os.path.join(folder, split, f"{label}_{number:03d}.mp4")
            write_video(path, frames, crf=18)
            paths.append(path)
            rows.append(f"{split}/{label}_{number:03d},{label}")
    labels = os.path.join(folder, f"{split}.csv")
    # the labels last: a split with a CSV is whole
    write_text_atomically(labels, "video_id,label\n" + "\n".join(rows) + "\n")
    return paths, labels
