"""TV-L1 optical flow in PyTorch, batched, on the CPU or CUDA.

The duality-based scheme of Zach, Pock and Bischof (2007) as described by Sánchez,
Meinhardt-Llopis and Facciolo (IPOL 2013), with OpenCV DualTVL1's parameters and defaults:
an image pyramid (`scale_step`), `warps` warpings per scale, each with up to
`outer_iterations` x `inner_iterations` of: thresholding step (v), flow update (u = v +
theta div p), dual update (p), stopping when the mean squared change of u is below epsilon^2;
a median filter on u before each outer iteration.

Many frame pairs run at once: every operation is on (B, 1, H, W) tensors, and each pair keeps
its own convergence test: a pair that has converged leaves the batch, which shrinks to the
pairs still iterating (most pairs converge in a third of the iterations of the slowest), so a
pair's flow does not depend on the batch it is in and finished pairs cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Tvl1Params:
    """OpenCV's `DualTVL1OpticalFlow` parameters and defaults (`lambda_` is its `lambda`)."""

    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    median_filtering: int = 5


def _centred_gradient(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Half the difference of the neighbours; one-sided (halved) on the borders, as OpenCV."""
    dx = torch.empty_like(image)
    dx[..., 1:-1] = 0.5 * (image[..., 2:] - image[..., :-2])
    dx[..., 0] = 0.5 * (image[..., 1] - image[..., 0])
    dx[..., -1] = 0.5 * (image[..., -1] - image[..., -2])
    dy = torch.empty_like(image)
    dy[..., 1:-1, :] = 0.5 * (image[..., 2:, :] - image[..., :-2, :])
    dy[..., 0, :] = 0.5 * (image[..., 1, :] - image[..., 0, :])
    dy[..., -1, :] = 0.5 * (image[..., -1, :] - image[..., -2, :])
    return dx, dy


def _forward_gradient(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """u(x+1) - u(x), zero on the last column (row)."""
    ux = torch.zeros_like(u)
    torch.sub(u[..., 1:], u[..., :-1], out=ux[..., :-1])
    uy = torch.zeros_like(u)
    torch.sub(u[..., 1:, :], u[..., :-1, :], out=uy[..., :-1, :])
    return ux, uy


def _divergence(px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Backward differences, the adjoint of `_forward_gradient` (OpenCV's borders)."""
    div = px + py
    div[..., 1:] -= px[..., :-1]
    div[..., 1:, :] -= py[..., :-1, :]
    return div


def _median(u: torch.Tensor, size: int) -> torch.Tensor:
    """size x size median of each (B, 1, H, W) map, replicated borders. On the CPU, OpenCV's
    medianBlur (same borders, same result, much faster than sorting unfolded windows)."""
    if u.device.type == "cpu" and size in (3, 5):
        return torch.from_numpy(np.stack([cv2.medianBlur(plane, size)
                                          for plane in u[:, 0].numpy()]))[:, None]
    half = size // 2
    padded = F.pad(u, (half, half, half, half), mode="replicate")
    windows = padded.unfold(2, size, 1).unfold(3, size, 1)
    return windows.reshape(*u.shape, size * size).median(dim=-1).values


def _warp(images: torch.Tensor, u1: torch.Tensor, u2: torch.Tensor) -> torch.Tensor:
    """images (B, C, H, W) sampled at x + u (bicubic; zero outside the image, as OpenCV's remap
    with its default constant border: a pair whose flow leaves the image is penalised there)."""
    height, width = images.shape[-2:]
    ys = torch.arange(height, device=images.device, dtype=images.dtype)
    xs = torch.arange(width, device=images.device, dtype=images.dtype)
    x = (xs[None, None, None, :] + u1) * (2.0 / width) + (1.0 / width - 1.0)
    y = (ys[None, None, :, None] + u2) * (2.0 / height) + (1.0 / height - 1.0)
    grid = torch.stack((x[:, 0], y[:, 0]), dim=-1)
    return F.grid_sample(images, grid, mode="bicubic", padding_mode="zeros",
                         align_corners=False)


def _resize_matrix(size_in: int, size_out: int, scale: float, like: torch.Tensor
                   ) -> torch.Tensor:
    """(size_out, size_in) bilinear weights of OpenCV's resize with an explicit factor: output
    pixel i samples input position (i + 0.5) / scale - 0.5, clamped to the image. OpenCV maps
    with the factor itself, not the ratio of the rounded sizes (as F.interpolate(size=) does);
    the two drift apart by up to a quarter pixel across a Sintel frame."""
    position = ((torch.arange(size_out, dtype=torch.float64) + 0.5) / scale - 0.5).clamp(min=0)
    low = position.floor().long().clamp(max=size_in - 1)
    high = (low + 1).clamp(max=size_in - 1)
    weight_high = position - low
    matrix = torch.zeros(size_out, size_in, dtype=torch.float64)
    rows = torch.arange(size_out)
    matrix[rows, low] += 1 - weight_high
    matrix[rows, high] += weight_high
    return matrix.to(like)


def _pyramid(image: torch.Tensor, params: Tvl1Params) -> list[torch.Tensor]:
    """Levels from fine to coarse, each `scale_step` times the one before (OpenCV's resize:
    bilinear, sizes rounded)."""
    levels = [image]
    for _ in range(1, params.nscales):
        height, width = levels[-1].shape[-2:]
        size = (round(height * params.scale_step), round(width * params.scale_step))
        if min(size) < 16:
            break
        rows = _resize_matrix(height, size[0], params.scale_step, image)
        columns = _resize_matrix(width, size[1], params.scale_step, image)
        levels.append(rows @ levels[-1] @ columns.T)
    return levels


_TINY = 1.1920929e-07  # float32 epsilon, OpenCV's test for a flat spot


def _inner_step(u1, u2, p11, p12, p21, p22, i1wx, i1wy, neg_inv_grad, rho_c, l_t: float,
                theta: float, taut: float):
    """One inner iteration for every pair: thresholding (v), flow (u), dual (p). Returns the
    new u1, u2, p11, p12, p21, p22 and each pair's mean squared change of u.

    The thresholding step is -rho / |grad I1|^2 clamped to [-l_t, l_t]: the three cases of
    the scheme in one expression. `neg_inv_grad` is -1 / max(|grad I1|^2, float32 eps); where
    the gradient is below eps the step is +-l_t or 0 (OpenCV) but multiplies a gradient
    component below 4e-4, so the two differ by at most 2e-5 px."""
    rho = torch.addcmul(torch.addcmul(rho_c, i1wx, u1), i1wy, u2)
    step = rho.mul_(neg_inv_grad).clamp_(-l_t, l_t)
    delta1 = torch.addcmul(_divergence(p11, p12).mul_(theta), step, i1wx)
    delta2 = torch.addcmul(_divergence(p21, p22).mul_(theta), step, i1wy)
    change = (delta1.square() + delta2.square()).mean(dim=(1, 2, 3))
    new_u1, new_u2 = u1 + delta1, u2 + delta2
    u1x, u1y = _forward_gradient(new_u1)
    u2x, u2y = _forward_gradient(new_u2)
    norm1 = torch.hypot(u1x, u1y).mul_(taut).add_(1.0)
    norm2 = torch.hypot(u2x, u2y).mul_(taut).add_(1.0)
    return (new_u1, new_u2, torch.add(p11, u1x, alpha=taut).div_(norm1),
            torch.add(p12, u1y, alpha=taut).div_(norm1),
            torch.add(p21, u2x, alpha=taut).div_(norm2),
            torch.add(p22, u2y, alpha=taut).div_(norm2), change)


_compiled_step = None


def _step_function(compile_step: bool):
    """The inner step, fused by torch.compile when asked: meant for CUDA, where eager runs one
    kernel per operation. On the CPU the eager step (in-place, few temporaries) is faster than
    the compiled one (BENCHMARKS.md), and compiling costs about 30 s per process."""
    global _compiled_step
    if not compile_step:
        return _inner_step
    if _compiled_step is None:
        import torch._dynamo

        # graphs for pyramid levels and shrinking batches: more than dynamo's default of 8,
        # after which it would silently fall back to eager
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 256)
        _compiled_step = torch.compile(_inner_step)
    return _compiled_step


def _one_scale(i0: torch.Tensor, i1: torch.Tensor, u1: torch.Tensor, u2: torch.Tensor,
               params: Tvl1Params, compile_step: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor]:
    step_function = _step_function(compile_step)
    i1x, i1y = _centred_gradient(i1)
    # u1, u2, p11, p12, p21, p22 of every pair; the loops below work on the pairs that have not
    # converged yet (`live`), a shrinking sub-batch, and write each pair back once it converges
    state = [u1.clone(), u2.clone(), *(torch.zeros_like(i0) for _ in range(4))]
    l_t = params.lambda_ * params.theta
    taut = params.tau / params.theta
    threshold = params.epsilon ** 2
    for _ in range(params.warps):
        warped = _warp(torch.cat((i1, i1x, i1y), 1), state[0], state[1])
        i1w, i1wx, i1wy = warped[:, 0:1], warped[:, 1:2], warped[:, 2:3]
        neg_inv_grad = -1.0 / (i1wx * i1wx + i1wy * i1wy).clamp(min=_TINY)
        rho_c = i1w - i1wx * state[0] - i1wy * state[1] - i0
        live = torch.arange(i0.shape[0], device=i0.device)
        variables, constants = list(state), [i1wx, i1wy, neg_inv_grad, rho_c]
        for _ in range(params.outer_iterations):
            if params.median_filtering > 1:
                variables[0] = _median(variables[0], params.median_filtering)
                variables[1] = _median(variables[1], params.median_filtering)
            for _ in range(params.inner_iterations):
                *variables, change = step_function(*variables, *constants, l_t, params.theta,
                                                   taut)
                done = change <= threshold
                if bool(done.any()):
                    for whole, part in zip(state, variables, strict=True):
                        whole[live[done]] = part[done]
                    keep = ~done
                    live = live[keep]
                    variables = [part[keep] for part in variables]
                    constants = [part[keep] for part in constants]
                    if not len(live):
                        break
            if not len(live):
                break
        for whole, part in zip(state, variables, strict=True):
            whole[live] = part
    return state[0], state[1]


@torch.no_grad()
def tvl1_torch(first: torch.Tensor, second: torch.Tensor, params: Tvl1Params = Tvl1Params(),
               *, compile_step: bool = False) -> torch.Tensor:
    """Flow from `first` to `second`, both (B, 1, H, W) float grey levels (0-255): pixel p of
    `first` is at p + flow[p] in `second`. Returns (B, H, W, 2) float32 (dx, dy), pixels.
    compile_step: fuse the inner iteration with torch.compile (for CUDA; see _step_function)."""
    first, second = first.float(), second.float()
    levels0, levels1 = _pyramid(first, params), _pyramid(second, params)
    u1 = torch.zeros_like(levels0[-1])
    u2 = torch.zeros_like(levels0[-1])
    for scale in range(len(levels0) - 1, -1, -1):
        u1, u2 = _one_scale(levels0[scale], levels1[scale], u1, u2, params, compile_step)
        if scale:
            size = levels0[scale - 1].shape[-2:]
            u1 = F.interpolate(u1, size=size, mode="bilinear", align_corners=False)
            u2 = F.interpolate(u2, size=size, mode="bilinear", align_corners=False)
            u1, u2 = u1 / params.scale_step, u2 / params.scale_step
    return torch.cat((u1, u2), 1).permute(0, 2, 3, 1).contiguous()


def tvl1_flow_torch(frames_a: np.ndarray, frames_b: np.ndarray, *, device: str = "cpu",
                    batch_size: int | None = None, params: Tvl1Params = Tvl1Params(),
                    compile_step: bool = False) -> np.ndarray:
    """`tvl1_flow` with the PyTorch backend: grey uint8 (N, H, W) in, (N, H, W, 2) float32
    out, `batch_size` pairs at a time on `device` (default 8 on the CPU, where larger batches
    leave the cache and run slower, 256 on a GPU)."""
    if batch_size is None:
        batch_size = 8 if torch.device(device).type == "cpu" else 256
    out = []
    for start in range(0, len(frames_a), batch_size):
        a = torch.from_numpy(np.ascontiguousarray(frames_a[start:start + batch_size]))
        b = torch.from_numpy(np.ascontiguousarray(frames_b[start:start + batch_size]))
        flow = tvl1_torch(a[:, None].to(device), b[:, None].to(device), params,
                          compile_step=compile_step)
        out.append(flow.cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, *frames_a.shape[1:], 2), np.float32)
