"""Deformable sampling (`dvt_model.layers.sparse_sampling`) against a plain reference: linear
interpolation from floor and fraction with masks for neighbours outside the grid, a dense
sampling matrix and one matmul, differentiated by autograd."""

import pytest
import torch

from dvt_model.layers import sparse_sampling


def _reference_corners(positions: torch.Tensor, size: tuple[int, ...]):
    """positions (..., k) -> index (..., 2^k), weight (..., 2^k): floor/fraction, masked."""
    floor = positions.detach().floor()
    frac = positions - floor
    index, weight, stride = None, None, 1
    for axis, extent in enumerate(reversed(size)):
        cell = floor[..., axis, None].long() + torch.tensor([0, 1])
        inside = (cell >= 0) & (cell < extent)
        axis_weight = torch.stack((1 - frac[..., axis], frac[..., axis]), -1) * inside
        axis_index = cell.clamp(0, extent - 1) * stride
        stride *= extent
        if index is None:
            index, weight = axis_index, axis_weight
        else:
            index = (axis_index[..., :, None] + index[..., None, :]).flatten(-2)
            weight = (axis_weight[..., :, None] * weight[..., None, :]).flatten(-2)
    return index, weight


def _reference_sum(values, positions, attention, size, base):
    index, weight = _reference_corners(positions.movedim(0, -1), size)
    index = index + base[..., None]
    matrix = torch.zeros(*attention.shape[:-1], values.shape[-2], dtype=values.dtype)
    matrix = matrix.scatter_add(-1, index.flatten(-2), (attention[..., None] * weight).flatten(-2))
    return matrix @ values


def _case(size: tuple[int, ...], seed: int):
    """Values over two copies of the grid (points of odd m read the second), positions spread
    from 2.5 cells before to 2.5 after the grid, a third of them on whole cells."""
    generator = torch.Generator().manual_seed(seed)
    cells = int(torch.tensor(size).prod())
    k, groups, queries, points, width = len(size), 3, 5, 6, 4
    extent = torch.tensor(list(reversed(size)), dtype=torch.float64)
    positions = torch.rand(k, 2, groups, queries, points, generator=generator,
                           dtype=torch.float64) * (extent + 5).view(k, 1, 1, 1, 1) - 2.5
    positions[:, :, 0] = positions[:, :, 0].round()
    values = torch.randn(2, groups, 2 * cells, width, generator=generator, dtype=torch.float64)
    attention = torch.rand(2, groups, queries, points, generator=generator, dtype=torch.float64)
    base = (torch.arange(points) % 2) * cells
    return values, positions, attention, base


@pytest.mark.parametrize("size", [(3, 4), (2, 3, 4), (1, 3), (5, 1, 1)])
def test_deformable_sum_and_its_gradients_equal_the_reference(size, monkeypatch):
    monkeypatch.setattr(sparse_sampling, "CPU_CHUNK_ELEMENTS", 60)  # several chunks
    monkeypatch.setattr(sparse_sampling, "GATHER_CHUNK_ENTRIES", 200)
    inputs = [t.requires_grad_() for t in _case(size, seed=len(size) + size[0])[:3]]
    base = _case(size, seed=len(size) + size[0])[3]
    out = sparse_sampling.deformable_sum(*inputs, size, base)
    expected = _reference_sum(*inputs, size, base)
    assert torch.allclose(out, expected, atol=1e-12)
    grad = torch.randn_like(out)
    for ours, theirs in zip(torch.autograd.grad(out, inputs, grad),
                            torch.autograd.grad(expected, inputs, grad), strict=True):
        assert torch.allclose(ours, theirs, atol=1e-12)


def test_deformable_sum_passes_gradcheck(monkeypatch):
    monkeypatch.setattr(sparse_sampling, "CPU_CHUNK_ELEMENTS", 60)
    values, positions, attention, base = _case((3, 4), seed=5)
    positions[:, :, 0] += 0.25  # gradcheck's finite differences need no whole-cell kinks
    assert torch.autograd.gradcheck(
        lambda v, p, a: sparse_sampling.deformable_sum(v, p, a, (3, 4), base),
        [t.requires_grad_() for t in (values, positions, attention)])


def test_interpolate_rows_and_its_gradient_equal_the_reference():
    size = (2, 3, 4)
    values, positions, _, base = _case(size, seed=7)
    positions.requires_grad_()
    table = torch.randn(2, 3, 5, values.shape[-2], dtype=torch.float64)
    ours = sparse_sampling.interpolate_rows(table, positions, size, base)
    index, weight = _reference_corners(positions.movedim(0, -1), size)
    gathered = table.gather(-1, (index + base[..., None]).flatten(-2)).unflatten(-1, (6, 8))
    theirs = (gathered * weight).sum(-1)
    assert torch.allclose(ours, theirs, atol=1e-12)
    assert torch.allclose(torch.autograd.grad(ours.sum(), positions)[0],
                          torch.autograd.grad(theirs.sum(), positions)[0], atol=1e-12)


def test_deformable_sum_in_bf16_autocast_keeps_dtypes():
    values, positions, attention, base = (t.float() if t.is_floating_point() else t
                                          for t in _case((3, 4), seed=3))
    values = values.requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sparse_sampling.deformable_sum(values.bfloat16(), positions, attention, (3, 4),
                                             base)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert values.grad.dtype == torch.float32 and torch.isfinite(values.grad).all()
