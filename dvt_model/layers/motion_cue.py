"""Motion cue embeddings m(s, t, t') (docs/design.md §6): one small class per cue type.

Every cue gives per-frame, per-patch displacement (pixels; `None` for cues without one) and
per-frame, per-patch appearance features. For query patch s of frame t and frame t' of its
sub-clip, the displacement is followed along the motion path between t and t' and the features
are averaged along it; with the time gap (t' - t) / T' they go through one linear embedding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from dvt_model.motion_path import pairwise_paths

# `MotionCue.per_frame`: displacement (B, T, Hp, Wp, 2) pixels or None, features or None.
PerFrame = tuple[torch.Tensor | None, torch.Tensor | None]

RESIDUAL_SCALE = 32.0  # grey levels -> about unit scale
DISPLACEMENT_SCALE = 4.0  # pixels -> about unit scale (typical motion: 1 to 8 px a frame)


def signed_log(displacement: torch.Tensor) -> torch.Tensor:
    """sign(d) log(1 + |d| / 1 px): about unit scale from a quarter pixel to tens of pixels, so
    that sub-pixel patch motion is not lost next to fast motion."""
    return displacement.sign() * displacement.abs().log1p()


def pool_to_patches(cue: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(B, T, h, w, C) on any grid covering the frame -> (B, T, Hp, Wp, C), area mean."""
    # b batch, t frames, h w cells, c channels
    if tuple(cue.shape[2:4]) == tuple(grid):
        return cue
    batch = cue.shape[0]
    pooled = F.adaptive_avg_pool2d(rearrange(cue, "b t h w c -> (b t) c h w"), grid)
    return rearrange(pooled, "(b t) c h w -> b t h w c", b=batch)


class MotionCue(nn.Module):
    """Base class. Subclasses set `inputs` (batch keys) and `feature_channels` and implement
    `per_frame`."""

    inputs: tuple[str, ...] = ()
    feature_channels: int = 0
    has_displacement: bool = False

    def __init__(self, *, embed_dim: int, patch_size: int = 16) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.embed = nn.Linear(2 + self.feature_channels + 1, embed_dim)
        # Unit-scale m whatever the cue's units: small displacements must not vanish at init.
        self.norm = nn.LayerNorm(embed_dim)

    def per_frame(self, batch: dict, grid: tuple[int, int]) -> PerFrame:
        """Displacement (B, T, Hp, Wp, 2) pixels or None; features (B, T, Hp, Wp, C) or None."""
        return None, None

    def motion_magnitude(self, batch: dict, grid: tuple[int, int],
                         per_frame: PerFrame | None = None) -> torch.Tensor | None:
        """How far each patch of each frame moved, (B, T, Hp*Wp) pixels; None for cues without
        displacement. `per_frame`: what `per_frame(batch, grid)` returned, if already known."""
        displacement, _ = per_frame or self.per_frame(batch, grid)
        return None if displacement is None else displacement.norm(dim=-1).flatten(2, 3)

    def token_channels(self, with_features: bool = True) -> int:
        """Channels of `per_token` (0: nothing to say per patch)."""
        if not self.has_displacement and not (with_features and self.feature_channels):
            return 0
        return 3 * (2 + (self.feature_channels if with_features else 0))

    def per_token(self, batch: dict, grid: tuple[int, int], with_features: bool = True,
                  per_frame: PerFrame | None = None) -> torch.Tensor:
        """The cue of each patch of each frame and when it happened, (B, T, Hp*Wp, 3C): the
        cue c (`signed_log` of the displacement, zero for cues without one, and the features
        when `with_features`) and its products with cos and sin of pi t / (T - 1), so that a linear layer can tell
        motion early in the clip from motion late in it."""
        displacement, features = per_frame or self.per_frame(batch, grid)
        if displacement is None:
            displacement = torch.zeros(*features.shape[:-1], 2, dtype=features.dtype,
                                       device=features.device)
        parts = [signed_log(displacement)] + ([features] if with_features else [])
        cue = torch.cat(parts, -1).flatten(2, 3)
        frames = cue.shape[1]
        phase = torch.arange(frames, device=cue.device, dtype=cue.dtype) * (
            math.pi / max(frames - 1, 1))
        when = torch.stack([torch.ones_like(phase), phase.cos(), phase.sin()], -1)
        return torch.einsum("btnc,tk->btnkc", cue, when).flatten(-2)

    def forward(self, batch: dict, *, grid: tuple[int, int], num_frames: int,
                frames_per_subclip: int, per_frame: PerFrame | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns `path` (B, T, N, T', 2): displacement of each query patch to every frame of
        its sub-clip, in patches; and `m` (B, T, N, T', D): the motion cue embedding."""
        # b batch, n sub-clips, q query frame, u target frame, h w patches, c channels
        displacement, features = per_frame or self.per_frame(batch, grid)
        reference = batch["rgb"]
        batch_size, sub = reference.shape[0], frames_per_subclip
        if displacement is None:
            displacement = reference.new_zeros(batch_size, num_frames, *grid, 2)
        to_clips = "b (n q) h w c -> (b n) q h w c"
        path, mean = pairwise_paths(
            rearrange(displacement.float(), to_clips, q=sub),
            None if features is None else rearrange(features.float(), to_clips, q=sub),
            cell=float(self.patch_size))
        steps = torch.arange(sub, device=path.device, dtype=path.dtype)
        gap = ((steps[None, :] - steps[:, None]) / sub)[None, :, :, None, None, None]
        parts = [path / DISPLACEMENT_SCALE, gap.expand(*path.shape[:-1], 1)]
        path = path / self.patch_size
        if mean is not None:
            parts.insert(1, mean)
        cue = torch.cat(parts, -1).to(self.embed.weight.dtype)
        from_clips = "(b n) q u h w c -> b (n q) (h w) u c"
        return (rearrange(path, from_clips, b=batch_size),
                self.norm(self.embed(rearrange(cue, from_clips, b=batch_size))))


class NoCue(MotionCue):
    """`none`: no motion information; m carries only the time gap."""


class MdRgbrCue(MotionCue):
    """`md_rgbr`: the codec's motion displacement and the RGB residual (the paper's MD+RGB-R)."""

    inputs = ("md", "rgbr")
    feature_channels = 3
    has_displacement = True

    def per_frame(self, batch, grid):
        return (pool_to_patches(batch["md"], grid),
                pool_to_patches(batch["rgbr"], grid) / RESIDUAL_SCALE)


class AvgpCue(MotionCue):
    """`avgp`: Avg-P-RGB, the mean colour of the patch over the frames between t and t'."""

    inputs = ("avgp",)
    feature_channels = 3

    def per_frame(self, batch, grid):
        return None, pool_to_patches(batch["avgp"], grid)


class RgbdCue(MotionCue):
    """`rgbd`: RGB frame differences; no displacement."""

    inputs = ("rgbd",)
    feature_channels = 3

    def per_frame(self, batch, grid):
        return None, pool_to_patches(batch["rgbd"], grid) / RESIDUAL_SCALE


class Tvl1Cue(MotionCue):
    """`tvl1`: TV-L1 optical flow as displacement, and the pooled flow as features."""

    inputs = ("tvl1",)
    feature_channels = 2
    has_displacement = True

    def per_frame(self, batch, grid):
        flow = pool_to_patches(batch["tvl1"], grid)
        return flow, flow / DISPLACEMENT_SCALE


MOTION_CUES: dict[str, type[MotionCue]] = {
    "md_rgbr": MdRgbrCue, "avgp": AvgpCue, "rgbd": RgbdCue, "tvl1": Tvl1Cue, "none": NoCue,
}
