"""Checkpoints that cannot run code: tensors and plain values only, read with
`torch.load(weights_only=True)`; the model's weights also as `<name>.safetensors` beside them.

A checkpoint that needs the full unpickler (one written by dvt before this format, or one made
elsewhere) is refused with one line unless the caller says it trusts the file."""

from __future__ import annotations

import os
import pickle
import random
import re

import numpy as np
import torch

from dvt_prep.atomic import replaced_atomically
from dvt_prep.errors import InputError

TRUST_HINT = "pass --trust-checkpoint only if you trust where this file came from"


def rng_state() -> dict:
    """The torch, NumPy and Python generators' states as tensors and plain numbers."""
    _, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(),
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(position),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
            "python": {"version": version, "state": torch.tensor(python_state, dtype=torch.int64),
                       "gauss_next": gauss_next}}


def set_rng_state(state: dict) -> None:
    """Restore `rng_state()`'s result (or the tuples of checkpoints from before this format)."""
    torch.set_rng_state(state["torch"])
    numpy_state, python_state = state["numpy"], state["python"]
    if isinstance(numpy_state, dict):
        numpy_state = ("MT19937", numpy_state["keys"].numpy().astype(np.uint32),
                       numpy_state["pos"], numpy_state["has_gauss"],
                       numpy_state["cached_gaussian"])
    if isinstance(python_state, dict):
        python_state = (python_state["version"], tuple(python_state["state"].tolist()),
                        python_state["gauss_next"])
    np.random.set_state(numpy_state)
    random.setstate(python_state)


def save_checkpoint(path: str, state: dict) -> None:
    """`state` to `path` (`.pt`) and `state["model"]` to the `.safetensors` beside it, each
    written whole or not at all."""
    from safetensors.torch import save_file

    weights = os.path.splitext(path)[0] + ".safetensors"
    with replaced_atomically(weights) as temporary:
        save_file({k: v.contiguous() for k, v in state["model"].items()}, temporary)
    with replaced_atomically(path) as temporary:
        torch.save(state, temporary)


def load_checkpoint(path: str, *, trust: bool = False) -> dict:
    """A checkpoint dict, read with the weights-only unpickler; the full one only when `trust`."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not trust:
            named = re.search(r"GLOBAL ([\w.]+)", str(error))
            needs = f" (it asks for {named.group(1)})" if named else ""
            raise InputError(f"{path}: refused: the checkpoint holds more than tensors and plain "
                             f"values{needs}; {TRUST_HINT}") from None
    except (OSError, RuntimeError, EOFError) as error:
        raise InputError(f"{path}: cannot read the checkpoint ({error})") from None
    return torch.load(path, map_location="cpu", weights_only=False)
