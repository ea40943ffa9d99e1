"""Dataset clips/s against PyAV in paired rounds, on stores kept between runs (real content).

`bench_data.py` preps every store afresh, which takes long on a busy machine; this one preps
bench_data's two real 340x256 clips once into FOLDER (one store per rgb codec) and then, in
each of ROUNDS rounds, times one epoch of `VideoClipDataset` (train mode, rgb, md, rgbr, T = 16,
224x224, the store listed 8 times: 16 clips) and 16 clips decoded with PyAV as bench_data's
baseline, CPU time of this process with one torch thread. Prints the median rates and the
median paired ratio. The same FOLDER can be read by another checkout's code (PYTHONPATH) to
compare versions on the same stores.

Run: `python bench/bench_data_rounds.py [FOLDER] [--codecs h264,jpeg] [--rounds 10]`.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
import bench_data  # noqa: E402

from dvt_model.data import VideoClipDataset  # noqa: E402
from dvt_prep.encode import EncodeSettings  # noqa: E402
from dvt_prep.extract import PrepSettings  # noqa: E402
from dvt_prep.inputs import VideoInput  # noqa: E402
from dvt_prep.parallel import prep_parallel  # noqa: E402

CUES = ("rgb", "md", "rgbr")


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", nargs="?", default=os.path.join(tempfile.gettempdir(),
                                                                  "dvt_bench_rounds"))
    parser.add_argument("--codecs", default="h264,jpeg")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in a DataLoader worker
    os.makedirs(args.folder, exist_ok=True)
    paths = [os.path.join(args.folder, f"real{i}.mp4") for i in range(2)]
    if not all(os.path.exists(p) for p in paths):
        paths = bench_data.real_videos(args.folder)
    counts = []
    for path in paths:
        with bench_data.av.open(path) as container:
            counts.append(container.streams.video[0].frames)
    for codec in args.codecs.split(","):
        store = os.path.join(args.folder, f"real_{codec}.zarr")
        if not os.path.exists(store):
            prep_parallel([VideoInput(f"v{i}", p) for i, p in enumerate(paths)], store,
                          PrepSettings(cues=CUES, encode=EncodeSettings(size=256),
                                       rgb_codec=codec), workers=2)
        dataset = VideoClipDataset([store] * 8, cues=CUES, num_frames=bench_data.CLIP,
                                   img_size=224, mode="train")
        dataset.set_epoch(0)
        clips = sum(1 for _ in dataset)  # warm-up
        rng = random.Random(0)
        ours, pyav = [], []
        for round_index in range(args.rounds):
            dataset.set_epoch(round_index + 1)
            start = time.process_time()
            clips = sum(1 for _ in dataset)
            ours.append(clips / (time.process_time() - start))
            start = time.process_time()
            for _ in range(clips // len(paths)):
                for path, count in zip(paths, counts, strict=True):
                    bench_data.decode_clip(path, rng.randint(0, count - bench_data.CLIP), rng)
            pyav.append(clips // len(paths) * len(paths) / (time.process_time() - start))
        ratio = median([o / p for o, p in zip(ours, pyav, strict=True)])
        print(f"real content, rgb {codec}: dataset {median(ours):.1f} clips/s (max "
              f"{max(ours):.1f}), PyAV {median(pyav):.1f} (max {max(pyav):.1f}); median paired "
              f"ratio {ratio:.2f}x over {args.rounds} rounds")


if __name__ == "__main__":
    main()
