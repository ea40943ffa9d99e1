"""`recomputed_by_rows` gives the gradients plain autograd gives, keeping only its inputs."""

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from dvt_model.layers.recompute import recomputed_by_rows


class _Parts(nn.Module):
    """A prefix that mixes rows (a cumulative sum) and a row-wise part with parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.prefix_proj = nn.Linear(3, 3)
        self.row_proj = nn.Linear(9, 2)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)

    def prefix(self, x: torch.Tensor) -> list[torch.Tensor]:
        y = self.prefix_proj(x).cumsum(1)
        return [y.tanh(), y.square()]

    def rows(self, *branches: torch.Tensor) -> torch.Tensor:
        return self.frozen(torch.tanh(self.row_proj(torch.cat(branches, -1))))


@pytest.mark.parametrize("case", ["plain", "no_branches", "shared_param", "outer_checkpoint"])
def test_recomputed_by_rows_gives_plain_autograds_gradients_in_any_chunking(case):
    torch.manual_seed(0)
    parts = _Parts().double()
    x = torch.randn(2, 7, 3, dtype=torch.float64, requires_grad=True)
    passed = [] if case == "no_branches" else \
        [torch.randn(2, 7, 3, dtype=torch.float64, requires_grad=True)]
    if case == "no_branches":
        parts.row_proj = torch.nn.Linear(6, 2).double()
    inputs = [x, *passed, *(p for p in parts.parameters() if p.requires_grad)]
    plain = parts.rows(*passed, *parts.prefix(x))
    expected = torch.autograd.grad(plain.square().sum(), inputs)
    # "shared_param": the prefix's projection also listed with the row-wise part's parameters
    row_params = list(parts.parameters()) if case == "shared_param" \
        else [p for n, p in parts.named_parameters() if not n.startswith("prefix")]

    def run(chunk_rows):  # inputs made inside: under a checkpoint they are recomputed too
        return recomputed_by_rows(parts.rows, [b * 1.0 for b in passed], row_params=row_params,
                                  chunk_rows=chunk_rows, prefix=parts.prefix,
                                  prefix_input=x * 1.0,
                                  prefix_params=list(parts.prefix_proj.parameters()))

    for chunk_rows in (0, 1, 4, 100):
        out = checkpoint(run, chunk_rows, use_reentrant=False) if case == "outer_checkpoint" \
            else run(chunk_rows)
        assert out.shape == plain.shape
        assert torch.allclose(out, plain, atol=1e-12)
        grads = torch.autograd.grad(out.square().sum(), inputs)
        for got, want in zip(grads, expected, strict=True):
            assert torch.allclose(got, want, atol=1e-12)


def test_recomputed_by_rows_keeps_only_its_inputs():
    parts = _Parts()
    x = torch.randn(2, 7, 3, requires_grad=True)
    passed = torch.randn(2, 7, 3, requires_grad=True)
    kept = []

    def pack(tensor):
        kept.append(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        recomputed_by_rows(parts.rows, [passed], row_params=list(parts.parameters()),
                           chunk_rows=3, prefix=parts.prefix, prefix_input=x,
                           prefix_params=list(parts.prefix_proj.parameters()))
    assert {t.data_ptr() for t in kept} == {x.data_ptr(), passed.data_ptr()}
