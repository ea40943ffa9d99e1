"""`recomputed`: run a piece, and have autograd recompute it in the backward pass instead of
keeping its intermediates (a non-reentrant checkpoint); a plain call when autograd is off."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.checkpoint import checkpoint


def recomputed(function: Callable[..., torch.Tensor], *args) -> torch.Tensor:
    """function(*args), keeping only its inputs for the backward pass while autograd records."""
    if torch.is_grad_enabled():
        return checkpoint(function, *args, use_reentrant=False)
    return function(*args)
