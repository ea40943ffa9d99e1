"""Benchmark of the clip dataset (issue: the streaming PyTorch dataset).

Clips/s of `VideoClipDataset` (train mode: random clip, random resized crop to 224, flip) for
cues rgb, md, rgbr at T = 16, against decoding the same kind of clip (16 frames from a random
start, resized and cropped to 224) straight from the mp4 with PyAV, in the same run; CPU time
of one process, with one torch thread as in a DataLoader worker. Sources are Kinetics-like
340x256 mp4s, libx264 with its default key-frame interval (250), so a random clip is reached by
seeking to the key frame before it and decoding on, of two contents: synthetic translating
noise (300 frames; very cheap to decode) and real camera footage (mv-extractor's 720p test
video from ../shared/data, 337 frames, scaled to 340x256). Then clips/s through a DataLoader
with 1 and 2 workers. Stores of each rgb codec (DVT_BENCH_CODECS, default
h264,jpeg,lossless): with h264 (the default) rgb is decoded from the stored canonical stream and
rgbr computed from it at read time; with jpeg and lossless both are read as stored.

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
import torch
from torch.utils.data import DataLoader

from dvt_model.data import VideoClipDataset, collate
from dvt_prep.encode import EncodeSettings
from dvt_prep.extract import PrepSettings
from dvt_prep.inputs import VideoInput
from dvt_prep.parallel import prep_parallel
from dvt_prep.synthetic import write_translating_video, write_video

NUM_VIDEOS, FRAMES, CLIP = 4, 300, 16
CODECS = tuple(os.environ.get("DVT_BENCH_CODECS", "h264,jpeg,lossless").split(","))
REAL = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mv-extractor",
                    "vid_h264.mp4")


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


def real_videos(folder: str) -> list[str]:
    """mv-extractor's 720p camera video scaled to 340x256, and its mirror image."""
    with av.open(REAL) as container:
        frames = [cv2.resize(f.to_ndarray(format="rgb24"), (340, 256),
                             interpolation=cv2.INTER_AREA)
                  for f in container.decode(video=0)]
    return [write_video(os.path.join(folder, f"real{i}.mp4"),
                        np.stack([f[:, ::-1] if i else f for f in frames]), crf=23, fps=25)
            for i in range(2)]


def compare(name: str, paths: list[str], folder: str) -> str:
    """Dataset against PyAV on `paths`, for each rgb codec; returns the first codec's store."""
    num_frames = []
    for path in paths:
        with av.open(path) as container:
            num_frames.append(container.streams.video[0].frames)
    rng = random.Random(0)

    def baseline(_: int) -> int:
        for path, count in zip(paths, num_frames, strict=True):
            decode_clip(path, rng.randint(0, count - CLIP), rng)
        return len(paths)

    stores = {}
    for codec in CODECS:
        stores[codec] = os.path.join(folder, f"{name}_{codec}.zarr")
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
        for epoch in range(12 // len(paths) * 3):  # alternate, CPU time of one process
            for method, function in (("ours", ours), ("pyav", baseline)):
                start = time.process_time()
                clips = function(epoch)
                rates[method].append(clips / (time.process_time() - start))
        ratios = sorted(o / p for o, p in zip(rates["ours"], rates["pyav"], strict=True))
        print(f"{name} content, rgb {codec}: dataset {max(rates['ours']):.1f} clips/s "
              f"(rgb, md, rgbr + augmentation), PyAV decode {max(rates['pyav']):.1f} clips/s "
              f"(rgb only); median paired ratio {ratios[len(ratios) // 2]:.2f}x "
              f"(target >= 10x)")
    return stores[CODECS[0]]


def main() -> None:
    torch.set_num_threads(1)  # as in a DataLoader worker
    folder = tempfile.mkdtemp(prefix="dvt_bench_data_")
    paths = [write_translating_video(os.path.join(folder, f"v{i}.mp4"), height=256, width=340,
                                     num_frames=FRAMES, dx=1.0 + i, dy=0.5, seed=i, crf=23,
                                     fps=30)
             for i in range(NUM_VIDEOS)]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; 340x256 mp4s; clips of "
          f"{CLIP} frames at 224x224")
    store = compare("synthetic", paths, folder)
    if os.path.exists(REAL):
        compare("real", real_videos(folder), folder)
    else:
        print(f"{REAL} is absent: real content skipped")
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
