"""Which (video, view) items an epoch yields, on which rank and worker, and which frames.

Per epoch one permutation of all items, seeded by (seed, epoch) and identical on every rank.
Ranks take every R-th item of it. In `train` the tail that does not divide by R is dropped (at
most R-1 items an epoch, different ones each epoch); in `val`/`test` the permutation is padded by
wrapping around and the repeats are marked `padded`, so every item is seen exactly once and every
rank yields the same number of samples. Inside a rank, DataLoader workers take blocks of
`batch_size` consecutive samples in turn, so a DataLoader with that batch size returns the rank's
samples in order, and a resume after k samples continues exactly where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Item:
    video: int  # index into the dataset's video list
    view: int  # 0 in train/val; clip * num_crops + crop in test
    padded: bool = False


def epoch_permutation(num_items: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_items, generator=generator).tolist()


def rank_items(num_videos: int, num_views: int, *, seed: int, epoch: int, rank: int,
               world_size: int, drop_tail: bool) -> list[Item]:
    """The items of one rank for one epoch, in the order it yields them."""
    num_items = num_videos * num_views
    order = epoch_permutation(num_items, seed, epoch)
    if drop_tail:
        per_rank = num_items // world_size
        chosen = [(i, False) for i in order[:per_rank * world_size]]
    else:
        per_rank = -(-num_items // world_size)
        chosen = [(order[k % num_items], k >= num_items) for k in range(per_rank * world_size)]
    return [Item(index // num_views, index % num_views, padded)
            for index, padded in chosen[rank::world_size]]


def worker_share(items: list, worker: int, num_workers: int, batch_size: int) -> list:
    """Blocks of `batch_size` consecutive items, dealt to the workers in turn."""
    blocks = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
    return [item for block in blocks[worker::num_workers] for item in block]


def clip_starts(num_frames_video: int, span: int, mode: str, num_clips: int,
                generator: torch.Generator | None = None) -> list[int]:
    """First frame of each temporal clip of `span` frames: one random (train), the centre
    (val), or `num_clips` evenly spread (test)."""
    last_start = max(0, num_frames_video - span)
    if mode == "train":
        return [int(torch.randint(last_start + 1, (1,), generator=generator))]
    if mode == "val" or num_clips == 1:
        return [last_start // 2]
    return [round(c * last_start / (num_clips - 1)) for c in range(num_clips)]


def clip_frames(start: int, num_frames: int, stride: int, num_frames_video: int) -> list[int]:
    """Frame indices of a clip; past the end of a short video the last frame repeats."""
    return [min(start + k * stride, num_frames_video - 1) for k in range(num_frames)]
