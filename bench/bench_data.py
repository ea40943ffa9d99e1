"""Benchmark of the clip dataset (issue: the streaming PyTorch dataset).

Clips/s of `VideoClipDataset` (train mode: random clip, random resized crop to 224, flip) for
cues rgb, md, rgbr at T = 16, against decoding the same kind of clip (16 frames from a random
start, resized and cropped to 224) straight from the mp4 with PyAV, in the same run. Sources
are Kinetics-like: 340x256, 300 frames (10 s at 30 fps), libx264 with its default key-frame
interval, so a random clip is reached by seeking to the key frame before it and decoding on.
Then clips/s through a DataLoader with 1 and 2 workers.

Run: `dvt bench data` or `python bench/bench_data.py`.
"""

from __future__ import annotations

import os
import platform
import random
import tempfile
import time

import av
import cv2
import numpy as np
from torch.utils.data import DataLoader

from dvt_model.data import VideoClipDataset, collate
from dvt_prep.encode import EncodeSettings
from dvt_prep.extract import PrepSettings
from dvt_prep.inputs import VideoInput
from dvt_prep.parallel import prep_parallel
from dvt_prep.synthetic import write_translating_video

NUM_VIDEOS, FRAMES, CLIP = 4, 300, 16


def decode_clip(path: str, start: int, rng: random.Random) -> np.ndarray:
    """The baseline: seek, decode 16 frames from `start`, resize the short side, crop 224."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        step = stream.time_base and 1 / (stream.average_rate * stream.time_base)
        container.seek(int(start * step), stream=stream, backward=True)
        frames = []
        for frame in container.decode(stream):
            index = round(frame.pts / step)
            if index < start:
                continue
            image = frame.to_ndarray(format="rgb24")
            scale = 256 / min(image.shape[:2])
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            y, x = rng.randint(0, image.shape[0] - 224), rng.randint(0, image.shape[1] - 224)
            frames.append(image[y:y + 224, x:x + 224])
            if len(frames) == CLIP:
                break
    return np.stack(frames)


def main() -> None:
    folder = tempfile.mkdtemp(prefix="dvt_bench_data_")
    paths = [write_translating_video(os.path.join(folder, f"v{i}.mp4"), height=256, width=340,
                                     num_frames=FRAMES, dx=1.0 + i, dy=0.5, seed=i, crf=23,
                                     fps=30)
             for i in range(NUM_VIDEOS)]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {NUM_VIDEOS} videos of "
          f"{FRAMES} frames at 340x256; clips of {CLIP} frames at 224x224")
    rng = random.Random(0)

    def baseline(_: int) -> int:
        for path in paths:
            decode_clip(path, rng.randint(0, FRAMES - CLIP), rng)
        return len(paths)

    stores = {}
    for codec in ("jpeg", "lossless"):
        stores[codec] = os.path.join(folder, f"cache_{codec}.zarr")
        settings = PrepSettings(cues=("rgb", "md", "rgbr"), encode=EncodeSettings(size=256),
                                rgb_codec=codec)
        prep_parallel([VideoInput(f"v{i}", p) for i, p in enumerate(paths)], stores[codec],
                      settings, workers=2)
        dataset = VideoClipDataset(stores[codec], cues=("rgb", "md", "rgbr"), num_frames=CLIP,
                                   img_size=224, mode="train")

        def ours(epoch: int, dataset=dataset) -> int:
            dataset.set_epoch(epoch)
            return sum(1 for _ in dataset)

        rates = {"ours": [], "pyav": []}
        for epoch in range(6):  # alternate, CPU time of one process
            for name, function in (("ours", ours), ("pyav", baseline)):
                start = time.process_time()
                clips = function(epoch)
                rates[name].append(clips / (time.process_time() - start))
        ratios = sorted(o / p for o, p in zip(rates["ours"], rates["pyav"], strict=True))
        print(f"rgb {codec}, one process (CPU time): dataset {max(rates['ours']):.1f} clips/s "
              f"(rgb, md, rgbr + augmentation), PyAV decode {max(rates['pyav']):.2f} clips/s "
              f"(rgb only); median paired ratio {ratios[len(ratios) // 2]:.2f}x "
              f"(target >= 10x)")
    store = stores["jpeg"]
    big = VideoClipDataset([store] * 1, cues=("rgb", "md", "rgbr"), num_frames=CLIP,
                           img_size=224, mode="test", num_clips=4, num_crops=3)
    for workers in (1, 2):
        loader = DataLoader(big, batch_size=4, num_workers=workers, collate_fn=collate)
        next(iter(loader))  # start-up
        start = time.perf_counter()
        clips = sum(len(batch["label"]) for batch in loader)
        print(f"DataLoader, {workers} worker(s): {clips / (time.perf_counter() - start):.1f} "
              f"clips/s (wall, {clips} test views)")


if __name__ == "__main__":
    main()
