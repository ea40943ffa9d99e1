"""Synthetic videos with known motion, encoded in process with PyAV's libx264.

Used by the tests, the benchmarks and `dvt demo`: a smooth colourful texture translating by a
known (dx, dy) pixels per frame, so the true backward displacement of every pixel is (-dx, -dy).
"""

from __future__ import annotations

import os

import av
import cv2
import numpy as np


def texture(height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture, (H, W, 3) uint8, with detail at several scales."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.float32)
    for sigma, weight in ((8.0, 1.0), (3.0, 0.6), (1.2, 0.35)):
        noise = rng.standard_normal((height, width, 3)).astype(np.float32)
        blurred = cv2.GaussianBlur(noise, (0, 0), sigma)
        image += weight * blurred / (blurred.std() + 1e-6)
    image = (image - image.min()) / (image.max() - image.min() + 1e-6)
    return (image * 235 + 10).astype(np.uint8)


def translating_frames(height: int, width: int, num_frames: int, dx: float, dy: float, *,
                       seed: int = 0) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 of a texture moving by (dx, dy) pixels per frame on screen.

    The content at p in frame t was at p - (dx, dy) in frame t-1: the backward displacement is
    (-dx, -dy) everywhere (border pixels enter from outside the texture's view).
    """
    steps = np.tile(np.float64([dx, dy]), (num_frames - 1, 1))
    return shifting_frames(height, width, steps, seed=seed)


def shifting_frames(height: int, width: int, steps: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 of a texture whose motion changes from frame to frame.

    `steps` is (T-1, 2): the on-screen motion (dx, dy) in pixels from frame t-1 to frame t,
    so frame t's backward displacement is -steps[t-1] everywhere.
    """
    steps = np.asarray(steps, np.float64).reshape(-1, 2)
    offsets = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    margin = int(np.ceil(np.abs(steps).max(initial=0.0) * (len(steps) + 1))) + 8
    big = texture(height + 2 * margin, width + 2 * margin, seed=seed)
    frames = []
    for shift_x, shift_y in offsets:
        # output(x, y) = big(x + margin - shift_x, y + margin - shift_y)
        matrix = np.float32([[1, 0, margin - shift_x], [0, 1, margin - shift_y]])
        frames.append(cv2.warpAffine(big, matrix, (width, height),
                                     flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REFLECT))
    return np.stack(frames)


def write_video(path: str | os.PathLike, frames: np.ndarray, *, fps: int = 25, crf: int = 12,
                codec: str = "libx264", options: dict | None = None) -> str:
    """Encode (T, H, W, 3) uint8 RGB frames to a video file with PyAV. Returns the path."""
    path = os.fspath(path)
    with av.open(path, mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "medium", **(options or {})}
        elif options:
            stream.options = options
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_translating_video(path: str | os.PathLike, *, height: int = 128, width: int = 160,
                            num_frames: int = 12, dx: float = 1.5, dy: float = -0.5,
                            seed: int = 0, **kwargs) -> str:
    """A translating-texture video on disk (see `translating_frames`)."""
    frames = translating_frames(height, width, num_frames, dx, dy, seed=seed)
    return write_video(path, frames, **kwargs)
