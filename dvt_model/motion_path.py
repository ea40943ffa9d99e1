"""Following motion paths through per-frame backward displacement fields (docs/design.md §1).

A field `d_t` on a grid of cells `cell` pixels wide says that the content at cell centre `p` of
frame `t` was at `p + d_t(p)` (pixels) in frame `t-1`. Going back several frames follows the path
with bilinear look-ups, CoViAR-style: `D = d_t(p) + d_{t-1}(p + d_t(p)) + ...`.

Used by the dataset (frame strides) and by the model's motion cue (pairs inside a sub-clip).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def grid_positions(height: int, width: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Cell centres in cell units, (H, W, 2) as (x, y): cell (i, j) is at (j, i)."""
    ys = torch.arange(height, device=device, dtype=dtype)
    xs = torch.arange(width, device=device, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((grid_x, grid_y), dim=-1)


def bilinear_lookup(field: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Sample `field` (N, H, W, C) at `positions` (N, h, w, 2) in cell units (x, y), bilinearly.

    Positions outside the grid take the border value. Returns (N, h, w, C).
    """
    height, width = field.shape[1:3]
    scale = positions.new_tensor([2.0 / width, 2.0 / height])
    normalised = (positions + 0.5) * scale - 1.0  # align_corners=False: cell centres
    sampled = F.grid_sample(field.permute(0, 3, 1, 2), normalised, mode="bilinear",
                            padding_mode="border", align_corners=False)
    return sampled.permute(0, 2, 3, 1)


def follow_back(displacements: torch.Tensor, cell: float) -> torch.Tensor:
    """Total backward displacement over consecutive frames, following the motion path.

    displacements: (K, H, W, 2) float32, pixels, the fields of frames `t-K+1 .. t` (oldest
    first). Returns (H, W, 2) float32, pixels: where the content at each cell centre of frame `t`
    was in frame `t-K`.
    """
    num_frames, height, width = displacements.shape[:3]
    start = grid_positions(height, width, device=displacements.device)[None]
    total = torch.zeros_like(displacements[0])[None]
    for k in range(num_frames - 1, -1, -1):
        if k == num_frames - 1:
            step = displacements[k][None]  # at the start positions: no look-up needed
        else:
            step = bilinear_lookup(displacements[k][None], start + total / cell)
        total = total + step
    return total[0]


def pairwise_paths(displacements: torch.Tensor, features: torch.Tensor | None, cell: float
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Displacement and mean feature along the path between every pair of frames of a clip.

    displacements: (N, T, H, W, 2) float32, pixels, per-frame backward fields.
    features: (N, T, H, W, C) per-frame features (residuals, pooled RGB, ...) or None.
    Returns `path` (N, T, T, H, W, 2): entry [t, u] is the displacement from cell s of frame t
    to its position in frame u (pixels); and `mean` (N, T, T, H, W, C): the mean of the
    features of frames min(t, u) .. max(t, u) looked up along that path. For u > t both come
    from the path of frame u back to t (negated), as docs/design.md §6 prescribes.
    """
    batch, num_frames, height, width = displacements.shape[:4]
    start = grid_positions(height, width, device=displacements.device)
    zero = displacements.new_zeros(batch, height, width, 2)
    back = [[None] * num_frames for _ in range(num_frames)]  # back[t][u], u <= t
    sums = [[None] * num_frames for _ in range(num_frames)]
    for t in range(num_frames):
        back[t][t] = zero
        if features is not None:
            sums[t][t] = features[:, t]
    for lag in range(1, num_frames):
        # All queries t >= lag step from frame t-lag+1 to t-lag at once.
        queries = range(lag, num_frames)
        previous = torch.stack([back[t][t - lag + 1] for t in queries], 1)  # (N, Q, H, W, 2)
        positions = start + previous / cell
        source = torch.stack([displacements[:, t - lag + 1] for t in queries], 1)
        step = bilinear_lookup(source.flatten(0, 1), positions.flatten(0, 1))
        current = previous + step.unflatten(0, (batch, len(queries)))
        for i, t in enumerate(queries):
            back[t][t - lag] = current[:, i]
        if features is not None:
            frames = torch.stack([features[:, t - lag] for t in queries], 1)
            looked = bilinear_lookup(frames.flatten(0, 1), (start + current / cell).flatten(0, 1))
            looked = looked.unflatten(0, (batch, len(queries)))
            for i, t in enumerate(queries):
                sums[t][t - lag] = sums[t][t - lag + 1] + looked[:, i]
    path = torch.stack([torch.stack([back[t][u] if u <= t else -back[u][t]
                                     for u in range(num_frames)], 1)
                        for t in range(num_frames)], 1)
    if features is None:
        return path, None
    mean = torch.stack([torch.stack([(sums[t][u] if u <= t else sums[u][t]) / (abs(t - u) + 1)
                                     for u in range(num_frames)], 1)
                        for t in range(num_frames)], 1)
    return path, mean
