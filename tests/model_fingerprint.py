"""Fingerprints of dvt_tiny's outputs and parameter gradients, to check that a faster model
computes the same function as the one recorded in `tests/data/model_fingerprints.json`.

A fingerprint is, per configuration, the logits and, per parameter, the dot product of its
gradient with a fixed random tensor and the gradient's norm, all computed in float64: a change
of summation order then moves them by about 1e-15, where in float32 a bias gradient summed
over a million terms with cancellation moves by more than 1e-5 of itself. Run this file to
record it anew (only when the model's function is meant to change)."""

from __future__ import annotations

import json
import os

import torch

from dvt_model import create_model
from dvt_model.info import example_batch

PATH = os.path.join(os.path.dirname(__file__), "data", "model_fingerprints.json")
CUES = ("md_rgbr", "avgp", "rgbd", "tvl1", "none")
FUSIONS = ("mixer", "mixer_pair", "mlp", "sum")
MODES = ("eval", "train", "train_ckpt_block", "train_ckpt_mixing")
EXTRA = {"dst": dict(attention="dst"), "dms": dict(attention="dms"),
         "dot": dict(attn_weights="dot"), "paper": dict(motion_tokens=False, cue_values=False,
                                                        pool="mean", pool_max=False)}


def configurations() -> dict[str, tuple[dict, str]]:
    """name -> (model keywords, mode)."""
    out = {}
    for cue in CUES:
        for fusion in FUSIONS:
            for mode in MODES:
                out[f"{cue}-{fusion}-{mode}"] = (dict(cue=cue, fusion=fusion), mode)
    for name, keywords in EXTRA.items():
        for mode in MODES:
            out[f"{name}-{mode}"] = (keywords, mode)
    return out


def fingerprint(keywords: dict, mode: str) -> dict:
    """Logits (B, classes) and, per parameter, [grad . r, |grad|] (train modes only)."""
    torch.manual_seed(0)
    model = create_model("dvt_tiny", num_classes=5, **keywords).double()
    torch.manual_seed(1)
    batch = {k: v.double() for k, v in example_batch(model, batch_size=2).items()}
    if mode == "eval":
        model.eval()
        with torch.inference_mode():
            return {"logits": model(batch).tolist()}
    if mode != "train":
        model.set_grad_checkpointing(True, mode.removeprefix("train_ckpt_"))
    logits = model(batch)
    (logits * torch.linspace(-1, 1, logits.numel()).view_as(logits)).sum().backward()
    generator = torch.Generator().manual_seed(2)
    grads = {}
    for name, parameter in model.named_parameters():
        probe = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
        grad = parameter.grad if parameter.grad is not None else torch.zeros_like(probe)
        grads[name] = [float((grad * probe).sum()), float(grad.norm()), float(probe.norm())]
    return {"logits": logits.tolist(), "grads": grads}


if __name__ == "__main__":
    record = {name: fingerprint(*config) for name, config in configurations().items()}
    with open(PATH, "w") as handle:
        json.dump(record, handle)
    print(f"{len(record)} configurations -> {PATH}")
