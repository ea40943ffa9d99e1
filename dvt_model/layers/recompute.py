"""Recomputation in the backward pass instead of keeping activations.

- `recomputed`: run a piece, and have autograd recompute it in the backward pass (a
  non-reentrant checkpoint); a plain call when autograd is off.
- `recomputed_by_rows`: the same for `rowwise(*branches, *prefix(prefix_input))`, where each
  output row depends only on the same row of every branch (the fusion of a DVT block's
  attention branches). The forward pass runs without autograd; the backward pass runs the
  prefix once more and then the row-wise part a chunk of rows at a time, so only one chunk's
  intermediates are ever alive. Nested checkpoints would run the row-wise part three times
  (forward, the outer recomputation, the inner one); this runs it twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.autograd.graph import get_gradient_edge
from torch.utils.checkpoint import checkpoint


def recomputed(function: Callable[..., torch.Tensor], *args) -> torch.Tensor:
    """function(*args), keeping only its inputs for the backward pass while autograd records."""
    if torch.is_grad_enabled():
        return checkpoint(function, *args, use_reentrant=False)
    return function(*args)


def recomputed_by_rows(rowwise: Callable[..., torch.Tensor], branches: Sequence[torch.Tensor],
                       *, row_params: Sequence[torch.Tensor], chunk_rows: int,
                       prefix: Callable[[torch.Tensor], list[torch.Tensor]] | None = None,
                       prefix_input: torch.Tensor | None = None,
                       prefix_params: Sequence[torch.Tensor] = ()) -> torch.Tensor:
    """rowwise(*branches, *prefix(prefix_input)) on rows: every branch (..., D) is seen as
    (rows, D), `rowwise` maps K such (R, D) tensors to (R, D_out), and the result is
    (..., D_out). Only `branches` and `prefix_input` are kept for the backward pass.

    `row_params` and `prefix_params`: the parameters `rowwise` and `prefix` use (their
    gradients are returned to autograd as any other input's). Both must be deterministic (no
    dropout: the random state is not replayed). A plain call when autograd is off."""
    prefix = prefix or (lambda _: [])
    if not torch.is_grad_enabled():
        return _by_rows(rowwise, [*branches, *prefix(prefix_input)], chunk_rows)
    return _RecomputedByRows.apply(rowwise, prefix, chunk_rows, len(branches),
                                   len(prefix_params), prefix_input, *branches,
                                   *prefix_params, *row_params)


def _by_rows(rowwise: Callable[..., torch.Tensor], branches: list[torch.Tensor],
             chunk_rows: int) -> torch.Tensor:
    shape = branches[0].shape
    flat = [b.reshape(-1, shape[-1]) for b in branches]
    step = chunk_rows if chunk_rows > 0 else flat[0].shape[0]
    out = torch.cat([rowwise(*(b[start:start + step] for b in flat))
                     for start in range(0, flat[0].shape[0], step)])
    return out.reshape(*shape[:-1], out.shape[-1])


class _RecomputedByRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rowwise, prefix, chunk_rows, num_branches, num_prefix_params,
                prefix_input, *rest):
        branches = rest[:num_branches]
        ctx.rowwise, ctx.prefix, ctx.chunk_rows = rowwise, prefix, chunk_rows
        ctx.prefix_params = rest[num_branches:num_branches + num_prefix_params]
        ctx.row_params = rest[num_branches + num_prefix_params:]
        ctx.has_prefix_input = prefix_input is not None
        ctx.autocast = _autocast_state((*branches, prefix_input)[0].device.type)
        ctx.save_for_backward(*branches, *([prefix_input] if ctx.has_prefix_input else []))
        return _by_rows(rowwise, [*branches, *prefix(prefix_input)], chunk_rows)

    @staticmethod
    def backward(ctx, grad_out):
        saved = ctx.saved_tensors
        num_branches = len(saved) - ctx.has_prefix_input
        branches = saved[:num_branches]
        prefix_input = saved[num_branches] if ctx.has_prefix_input else None
        prefix_params = [p for p in ctx.prefix_params if p.requires_grad]
        row_params = [p for p in ctx.row_params if p.requires_grad]
        with torch.enable_grad(), torch.autocast(**ctx.autocast):
            if prefix_input is not None:
                prefix_input = prefix_input.detach().requires_grad_(ctx.needs_input_grad[5])
            made = ctx.prefix(prefix_input)
            # Past the rows, only the prefix outputs' graph is needed, not their values.
            edges = [get_gradient_edge(m) if m.requires_grad else None for m in made]
            grad_rows, grad_row_params = _rows_backward(
                ctx.rowwise, [*branches, *(m.detach() for m in made)], row_params, grad_out,
                ctx.chunk_rows)
            del made
            wanted = [t for t in (prefix_input, *prefix_params)
                      if t is not None and t.requires_grad]
            backed = [(e, g) for e, g in zip(edges, grad_rows[num_branches:], strict=True)
                      if e is not None]
            prefix_grads = torch.autograd.grad(
                [e for e, _ in backed], wanted, [g for _, g in backed],
                allow_unused=True) if backed and wanted else ()
        # By position: a tensor passed twice gets the sum of its two gradients from autograd.
        prefix_grads = iter(prefix_grads)
        grad_prefix_input = next(prefix_grads) if prefix_input is not None \
            and prefix_input.requires_grad and backed else None
        grad_prefix_params = [next(prefix_grads) if p.requires_grad and backed else None
                              for p in ctx.prefix_params]
        row_grads = iter(grad_row_params)
        grad_row_params = [next(row_grads) if p.requires_grad else None for p in ctx.row_params]
        return (None, None, None, None, None, grad_prefix_input, *grad_rows[:num_branches],
                *grad_prefix_params, *grad_row_params)


def _rows_backward(rowwise, branches, params, grad_out, chunk_rows):
    """Gradients of sum(rowwise(rows) * grad_out) for the branches, (..., D) each, and the
    params, one chunk of rows at a time."""
    shape = branches[0].shape
    flat = [b.reshape(-1, shape[-1]) for b in branches]
    grad_flat = grad_out.reshape(flat[0].shape[0], -1)
    step = chunk_rows if chunk_rows > 0 else flat[0].shape[0]
    grad_rows = [torch.empty_like(b) for b in flat]
    grad_params = [torch.zeros_like(p) for p in params]
    for start in range(0, flat[0].shape[0], step):
        rows = [b[start:start + step].detach().requires_grad_() for b in flat]
        out = rowwise(*rows)
        grads = torch.autograd.grad(out, [*rows, *params], grad_flat[start:start + step],
                                    allow_unused=True)
        for target, grad in zip(grad_rows, grads[:len(rows)], strict=True):
            target[start:start + step] = 0 if grad is None else grad
        for total, grad in zip(grad_params, grads[len(rows):], strict=True):
            if grad is not None:
                total += grad
    return [g.reshape(shape) for g in grad_rows], grad_params


def _autocast_state(device_type: str) -> dict:
    return dict(device_type=device_type, enabled=torch.is_autocast_enabled(device_type),
                dtype=torch.get_autocast_dtype(device_type))
