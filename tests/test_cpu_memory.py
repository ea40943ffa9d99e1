"""`keep_freed_memory`: a freed large tensor's pages are reused, not mapped and faulted anew."""

import platform
import subprocess
import sys

import pytest

SCRIPT = """
import resource, sys
import torch
from dvt_model.cpu_memory import keep_freed_memory
kept = sys.argv[1] == "keep" and keep_freed_memory()
def faults_of_one_step():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(64 << 18)  # 64 MiB: above glibc's largest adaptive mmap threshold
    del x
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults_of_one_step()
print(kept, faults_of_one_step())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_freed_large_tensors_are_reused_without_page_faults():
    runs = {}
    for mode in ("keep", "default"):
        out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True,
                             text=True, check=True).stdout.split()
        runs[mode] = (out[0] == "True", int(out[1]))
    assert runs["keep"][0]
    assert runs["keep"][1] < 100  # the heap's pages are already there
    assert runs["default"][1] > 10_000  # a fresh mapping: every 4 KiB page faults once
