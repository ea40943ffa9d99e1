"""Recomputation in the backward pass instead of keeping activations.

- `recomputed`: run a piece, and have autograd recompute it in the backward pass (a
  non-reentrant checkpoint); a plain call when autograd is off.
- `recomputed_by_rows`: the same for `rowwise(*branches, *prefix(prefix_input))`, where each
  output row depends only on the same row of every branch (the fusion of a DVT block's
  attention branches). Its forward pass runs without autograd; its backward pass runs the
  prefix once more and then the row-wise part a chunk of rows at a time, so only one chunk's
  intermediates are ever alive. Nested checkpoints would run the row-wise part once more than
  this does (the forward, the outer recomputation, the inner one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.autograd.function import once_differentiable
from torch.autograd.graph import get_gradient_edge
from torch.utils.checkpoint import checkpoint


def recomputed(function: Callable[..., torch.Tensor], *args) -> torch.Tensor:
    """function(*args), keeping only its inputs for the backward pass while autograd records."""
    if torch.is_grad_enabled():
        return checkpoint(function, *args, use_reentrant=False)
    return function(*args)


@dataclass
class _Plan:
    """What the autograd function needs besides its tensor inputs."""

    rowwise: Callable[..., torch.Tensor]
    prefix: Callable[[torch.Tensor | None], list[torch.Tensor]]
    chunk_rows: int
    num_branches: int
    num_prefix_params: int


def recomputed_by_rows(rowwise: Callable[..., torch.Tensor], branches: Sequence[torch.Tensor],
                       *, row_params: Sequence[torch.Tensor], chunk_rows: int,
                       prefix: Callable[[torch.Tensor], list[torch.Tensor]] | None = None,
                       prefix_input: torch.Tensor | None = None,
                       prefix_params: Sequence[torch.Tensor] = ()) -> torch.Tensor:
    """rowwise(*branches, *prefix(prefix_input)): every branch (..., D) is seen as (R, D)
    rows, `rowwise` maps K such (R, D) tensors to (R, D_out), and the result is (..., D_out).
    While autograd records, only `branches` and `prefix_input` are kept for the backward pass,
    which goes through `chunk_rows` rows at a time (0: all at once); otherwise a plain call,
    `chunk_rows` rows at a time as well.

    `prefix_params` and `row_params`: the parameters `prefix` and `rowwise` use, each listed
    once (their gradients are returned to autograd as any other input's; tensor hooks on them
    see one partial gradient per chunk). Both functions must be deterministic (no dropout: the
    random state is not replayed)."""
    prefix = prefix or (lambda _: [])
    if not torch.is_grad_enabled():  # in chunks too: each chunk's intermediates stay in cache
        return _by_rows(rowwise, [*branches, *prefix(prefix_input)], chunk_rows)
    plan = _Plan(rowwise, prefix, chunk_rows, len(branches), len(prefix_params))
    return _RecomputedByRows.apply(plan, prefix_input, *branches, *prefix_params, *row_params)


def _row_chunks(num_rows: int, chunk_rows: int) -> list[slice]:
    """The row ranges of `chunk_rows` rows each (0 or fewer: one range of all of them)."""
    step = chunk_rows if chunk_rows > 0 else max(1, num_rows)
    return [slice(start, start + step) for start in range(0, num_rows, step)]


def _by_rows(rowwise: Callable[..., torch.Tensor], branches: list[torch.Tensor],
             chunk_rows: int) -> torch.Tensor:
    """rowwise over K branches (..., D), `chunk_rows` rows at a time -> (..., D_out)."""
    shape = branches[0].shape
    flat = [b.reshape(-1, shape[-1]) for b in branches]
    chunks = _row_chunks(flat[0].shape[0], chunk_rows)
    if len(chunks) == 1:
        out = rowwise(*flat)
    else:
        first = rowwise(*(b[chunks[0]] for b in flat))
        out = first.new_empty(flat[0].shape[0], first.shape[-1])
        out[chunks[0]] = first
        for rows in chunks[1:]:
            out[rows] = rowwise(*(b[rows] for b in flat))
    return out.reshape(*shape[:-1], out.shape[-1])


class _RecomputedByRows(torch.autograd.Function):
    """forward(plan, prefix_input, *branches, *prefix_params, *row_params) -> (..., D_out)."""

    @staticmethod
    def forward(ctx, plan: _Plan, prefix_input, *rest):
        branches = rest[:plan.num_branches]
        params = rest[plan.num_branches:]
        ctx.plan = plan
        ctx.prefix_params = params[:plan.num_prefix_params]
        ctx.row_params = params[plan.num_prefix_params:]
        ctx.has_prefix_input = prefix_input is not None
        ctx.autocast = _autocast_state((*branches, prefix_input)[0].device.type)
        ctx.save_for_backward(*branches, *([prefix_input] if ctx.has_prefix_input else []))
        return _by_rows(plan.rowwise, [*branches, *plan.prefix(prefix_input)], plan.chunk_rows)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        plan = ctx.plan
        saved = ctx.saved_tensors  # once: an outer checkpoint allows one unpacking
        branches = saved[:plan.num_branches]
        prefix_input = saved[plan.num_branches] if ctx.has_prefix_input else None
        with torch.enable_grad(), torch.autocast(**ctx.autocast):
            if prefix_input is not None:
                prefix_input = prefix_input.detach().requires_grad_(ctx.needs_input_grad[1])
            made = plan.prefix(prefix_input)
            # Past the rows only the prefix outputs' graph is needed, not their values.
            edges = [get_gradient_edge(m) if m.requires_grad else None for m in made]
            grad_rows, grad_row_params = _rows_backward(
                plan.rowwise, [*branches, *(m.detach() for m in made)], ctx.row_params,
                grad_out, plan.chunk_rows)
            del made
            grad_prefix = _prefix_backward(edges, grad_rows[plan.num_branches:],
                                           [prefix_input, *ctx.prefix_params])
        return (None, *grad_prefix[:1], *grad_rows[:plan.num_branches], *grad_prefix[1:],
                *grad_row_params)


def _rows_backward(rowwise: Callable[..., torch.Tensor], branches: list[torch.Tensor],
                   params: Sequence[torch.Tensor], grad_out: torch.Tensor, chunk_rows: int
                   ) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """The gradients of sum(rowwise(rows) * grad_out): one per branch (..., D), and one per
    parameter (None for those that need none or get none), a chunk of rows at a time."""
    shape = branches[0].shape
    flat = [b.reshape(-1, shape[-1]) for b in branches]
    grad_flat = grad_out.reshape(flat[0].shape[0], -1)
    wanted = [p for p in params if p.requires_grad]
    grad_rows = [torch.empty_like(b) for b in flat]
    totals: list[torch.Tensor | None] = [None] * len(wanted)
    for chunk in _row_chunks(flat[0].shape[0], chunk_rows):
        rows = [b[chunk].detach().requires_grad_() for b in flat]
        grads = torch.autograd.grad(rowwise(*rows), [*rows, *wanted], grad_flat[chunk],
                                    allow_unused=True)
        for target, grad in zip(grad_rows, grads[:len(rows)], strict=True):
            target[chunk] = 0 if grad is None else grad
        totals = [t if g is None else g if t is None else t + g
                  for t, g in zip(totals, grads[len(rows):], strict=True)]
    by_param = dict(zip(map(id, wanted), totals, strict=True))
    return [g.reshape(shape) for g in grad_rows], [by_param.get(id(p)) for p in params]


def _prefix_backward(edges: list, grads: list[torch.Tensor],
                     inputs: list[torch.Tensor | None]) -> list[torch.Tensor | None]:
    """The gradients, by way of the prefix outputs' graph `edges` (None: not differentiable)
    receiving `grads`, of each of `inputs` (None for those that need none or get none)."""
    backed = [(edge, grad) for edge, grad in zip(edges, grads, strict=True) if edge is not None]
    wanted = [t for t in inputs if t is not None and t.requires_grad]
    if not backed or not wanted:
        return [None] * len(inputs)
    got = torch.autograd.grad([e for e, _ in backed], wanted, [g for _, g in backed],
                              allow_unused=True)
    by_input = dict(zip(map(id, wanted), got, strict=True))
    return [by_input.get(id(t)) if t is not None else None for t in inputs]


def _autocast_state(device_type: str) -> dict:
    """The autocast setting in force for `device_type`, as torch.autocast's keywords."""
    return dict(device_type=device_type, enabled=torch.is_autocast_enabled(device_type),
                dtype=torch.get_autocast_dtype(device_type))
