"""The model computes the function recorded in tests/data/model_fingerprints.json (made by
tests/model_fingerprint.py before the speed work of issue 27): outputs and every parameter
gradient, for every cue and fusion, in eval and training, with and without gradient
checkpointing. Computed in float64, so a relative 1e-9 is far inside what float32 rounding
(relative 1e-5) allows: the same function, whatever order the sums now take."""

from __future__ import annotations

import json

import pytest

from tests.model_fingerprint import PATH, configurations, fingerprint

RELATIVE = 1e-9

with open(PATH) as _handle:
    RECORDED = json.load(_handle)


@pytest.mark.parametrize("name", sorted(configurations()))
def test_same_outputs_and_gradients(name):
    keywords, mode = configurations()[name]
    got, want = fingerprint(keywords, mode), RECORDED[name]
    scale = max(abs(v) for row in want["logits"] for v in row)
    for got_row, want_row in zip(got["logits"], want["logits"], strict=True):
        for g, w in zip(got_row, want_row, strict=True):
            assert abs(g - w) <= RELATIVE * scale, (name, g, w)
    if mode == "eval":
        return
    assert got["grads"].keys() == want["grads"].keys()
    for parameter, (dot, norm, probe_norm) in want["grads"].items():
        got_dot, got_norm, _ = got["grads"][parameter]
        assert abs(got_norm - norm) <= RELATIVE * norm + 1e-15, (name, parameter)
        # a dot product with a random probe: its rounding is relative to |grad| |probe|
        assert abs(got_dot - dot) <= RELATIVE * norm * probe_norm + 1e-15, (name, parameter)
