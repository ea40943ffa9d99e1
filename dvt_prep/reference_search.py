"""The reference frame of each motion vector of a source stream (`--no-reencode`).

FFmpeg exports a vector's direction (source -1: a past reference, +1: a future one) but not
which frame it refers to. With several reference frames (x264's default ref=3) a P-block may
point two or three anchors back, and with a B-pyramid (x264's default b-pyramid=normal) a
B-block may point to the middle B-frame of its group rather than to an I/P anchor. So for every
vector we test each candidate reference frame k = 1..MAX_DISTANCE frames away in its direction:
the block of frame t against the block the vector points to in frame t -/+ k, on the decoded
frames (which are the encoder's own references). The candidate with the least mean absolute
error is the reference. Where candidates predict about as well but would give different
one-frame displacements (flat blocks, repeating texture), the distance cannot be known and the
vector is dropped (its cells end up invalid unless another vector covers them).
"""

from __future__ import annotations

import cv2
import numpy as np

from dvt_prep.motion_vectors import DST_X, DST_Y, MOTION_SCALE, MOTION_X, MOTION_Y, SOURCE, H, W

MAX_DISTANCE = 16  # display frames searched in a vector's direction (H.264 allows 16 references)
NEAR_BEST = 1.25  # candidates with error <= NEAR_BEST x the best + NEAR_BEST_LEVELS compete...
NEAR_BEST_LEVELS = 1.0  # (grey levels, 0-255)
AGREE_PX = 0.5  # ...and make the vector invalid when their one-frame displacements differ more
STEP = 2  # pixels sampled every STEP in x and y inside a block
METHOD = (f"searched per block: the frame 1-{MAX_DISTANCE} away in the vector's direction that "
          "predicts the block best on the decoded frames; vectors whose distance is ambiguous "
          "are invalid")


def grey_frames(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Luma-like (H, W) uint8 of (H, W, 3) uint8 RGB frames, what the search compares."""
    return [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames]


def _block_samples(vectors: np.ndarray, height: int, width: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every STEP-th pixel of each vector's block: (vector index, x, y) clipped to the frame,
    and where each vector's samples start (they are contiguous, vector after vector)."""
    sizes_w, sizes_h = -(-vectors[:, W] // STEP), -(-vectors[:, H] // STEP)
    count = sizes_w * sizes_h
    owner = np.repeat(np.arange(len(vectors)), count)
    within = np.arange(owner.size) - np.repeat(np.cumsum(count) - count, count)
    x = vectors[owner, DST_X] - vectors[owner, W] // 2 + STEP * (within % sizes_w[owner])
    y = vectors[owner, DST_Y] - vectors[owner, H] // 2 + STEP * (within // sizes_w[owner])
    return owner, np.clip(x, 0, width - 1), np.clip(y, 0, height - 1), np.cumsum(count) - count


def vector_scales(vectors: np.ndarray, t: int, greys: list[np.ndarray]) -> np.ndarray:
    """Per-vector factor from a vector's motion to the one-frame-back displacement of frame t.

    vectors: (N, 10) int32 of frame t (`motion_vectors` layout); greys: every frame of the
    video from `grey_frames`. Returns (N,) float64: 1/k for a past reference k frames back,
    -1/k for a future one k frames ahead, 0 where the distance cannot be known.
    """
    scales = np.zeros(len(vectors), np.float64)
    if len(vectors) == 0:
        return scales
    vectors = vectors.astype(np.int64, copy=False)
    height, width = greys[t].shape
    motion = vectors[:, [MOTION_X, MOTION_Y]] / vectors[:, [MOTION_SCALE]]  # pixels, to the ref
    for direction in (-1, 1):
        chosen = np.flatnonzero(np.sign(vectors[:, SOURCE]) == direction)
        candidates = [k for k in range(1, MAX_DISTANCE + 1) if 0 <= t + direction * k < len(greys)]
        if len(chosen) == 0 or not candidates:
            continue
        owner, x, y, starts = _block_samples(vectors[chosen], height, width)
        shift = np.rint(motion[chosen]).astype(np.int64)
        ref_x = np.clip(x + shift[owner, 0], 0, width - 1)
        ref_y = np.clip(y + shift[owner, 1], 0, height - 1)
        pointed = ref_y * width + ref_x
        here = greys[t].ravel().take(y * width + x).astype(np.int16)
        samples = np.diff(np.append(starts, len(owner)))
        errors = np.stack([
            np.add.reduceat(np.abs(here - greys[t + direction * k].ravel().take(pointed)),
                            starts, dtype=np.int64) / samples
            for k in candidates])  # (candidates, vectors): mean absolute error, grey levels
        distances = np.array(candidates, np.float64)
        best = errors.argmin(0)
        competing = errors <= NEAR_BEST * errors.min(0) + NEAR_BEST_LEVELS
        # one-frame displacement each candidate implies, against the best one's
        implied = motion[chosen][None] / distances[:, None, None]
        spread = np.abs(implied - implied[best, np.arange(len(chosen))][None]).max(-1)
        ambiguous = (competing & (spread > AGREE_PX)).any(0)
        scales[chosen] = np.where(ambiguous, 0.0, -direction / distances[best])
    return scales
