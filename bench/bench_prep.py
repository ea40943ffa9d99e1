"""Benchmarks of dvt_prep (issue: foundation). Each ratio is against a baseline measured here.

1. Motion-vector export: frames/s of `motion_vectors()` over decode-only PyAV on the same file.
2. `extract_video` of rgb,md,rgbr,rgbd at --size 256: frames/s per core (CPU time), and as a
   ratio to decode-only PyAV of the same source.
3. Bytes on disk per frame for each cue at the defaults, beside mmaction2's layout for the same
   frames (a JPEG per RGB frame plus two 8-bit JPEG flow images, flow clipped to +-20 px).

Run: `dvt bench prep` or `python bench/bench_prep.py [VIDEO]`.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time

import av
import cv2
import numpy as np

from dvt_prep import motion_vectors, open_store
from dvt_prep.cues import cell_mean
from dvt_prep.extract import PrepSettings, extract_video
from dvt_prep.flow import tvl1_flow
from dvt_prep.store_writer import StoreWriter

REFERENCE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mv-extractor",
                         "vid_h264.mp4")


def cpu_rate(function) -> float:
    """Frames per CPU-second of one run (CPU time is steadier than wall time on shared cores)."""
    start = time.process_time()
    frames = function()
    return frames / (time.process_time() - start)


def paired_rates(candidate, baseline, repeats: int = 7) -> tuple[float, float, float]:
    """Candidate and baseline run alternately; best rate of each and the median paired ratio."""
    pairs = [(cpu_rate(candidate), cpu_rate(baseline)) for _ in range(repeats)]
    ratios = sorted(c / b for c, b in pairs)
    return max(c for c, _ in pairs), max(b for _, b in pairs), ratios[len(ratios) // 2]


def decode_only(path: str) -> int:
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type, stream.thread_count = "SLICE", 1
        return sum(1 for _ in container.decode(stream))


def mmaction2_bytes(rgb: np.ndarray, flow: np.ndarray) -> dict[str, float]:
    """Bytes per frame of mmaction2's rawframes: img_XXXXX.jpg, flow_x / flow_y JPEGs."""
    rgb_bytes = sum(len(cv2.imencode(".jpg", f[..., ::-1])[1]) for f in rgb)
    flow_bytes = 0
    for f in flow:
        q = np.clip((f + 20) * (255 / 40), 0, 255).astype(np.uint8)
        flow_bytes += sum(len(cv2.imencode(".jpg", q[..., c])[1]) for c in (0, 1))
    return {"rgb": rgb_bytes / len(rgb), "tvl1": flow_bytes / len(flow)}


def main(path: str) -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, PyAV {av.__version__}, OpenCV {cv2.__version__}")
    print(f"video: {path}")
    mv_fps, decode_fps, ratio = paired_rates(lambda: sum(1 for _ in motion_vectors(path)),
                                             lambda: decode_only(path))
    print(f"[mv export] decode-only {decode_fps:.0f} frames/s, motion_vectors {mv_fps:.0f} "
          f"frames/s, median paired ratio {ratio:.3f} (target >= 0.9)")

    settings = PrepSettings(cues=("rgb", "md", "rgbr", "rgbd"))
    prep_fps, decode_fps, ratio = paired_rates(
        lambda: extract_video(path, settings)[1]["num_frames"], lambda: decode_only(path),
        repeats=3)
    print(f"[prep rgb,md,rgbr,rgbd --size 256, without the store write] {prep_fps:.0f} frames/s "
          f"per core, ratio to decode-only {ratio:.3f}")
    with tempfile.TemporaryDirectory() as folder:
        arrays, meta = extract_video(path, settings)
        start = time.process_time()
        with StoreWriter(os.path.join(folder, "s.zarr")) as writer:
            writer.add_video("v", arrays, meta)
        write_s = time.process_time() - start
    print(f"[store write rgb,md,rgbr,rgbd] {meta['num_frames'] / write_s:.0f} frames/s per core")

    # Bytes per frame at the defaults (tvl1 on the first 32 frames only: it is slow).
    with tempfile.TemporaryDirectory() as folder:
        # decoded rgb and stored residuals (the H.264 layout's sizes: bench_store.py)
        arrays, meta = extract_video(path, PrepSettings(cues=("rgb", "mv", "md", "rgbr", "rgbd"),
                                                        rgb_codec="jpeg"))
        clip = {k: v[:32] for k, v in arrays.items()}
        clip["tvl1"] = np.zeros((32, *clip["rgbd"].shape[1:3], 2), np.float32)
        flow = tvl1_flow(clip["rgb"][1:], clip["rgb"][:-1])
        clip["tvl1"][1:] = [cell_mean(f, 4) for f in flow]
        store_path = os.path.join(folder, "s.zarr")
        with StoreWriter(store_path, rgb_codec="jpeg") as writer:
            writer.add_video("v", clip, meta | {"num_frames": 32})
        per_frame = {k: v / 32 for k, v in open_store(store_path).nbytes().items()}
        reference = mmaction2_bytes(clip["rgb"][1:], flow)
    width, height = meta["stored_size"]
    print(f"[bytes per frame, {width}x{height}, defaults (jpeg q95 4:4:4, cue grid 4)]")
    for name, size in sorted(per_frame.items()):
        print(f"  {name:9s} {size:9.0f} B")
    print(f"  total     {sum(per_frame.values()):9.0f} B; mmaction2 rawframes: rgb "
          f"{reference['rgb']:.0f} B + flow {reference['tvl1']:.0f} B = "
          f"{sum(reference.values()):.0f} B")
    k400 = 240_000 * 300
    print(f"  Kinetics-400 (~{k400 / 1e6:.0f} M frames) at this size: rgb,md,rgbr,rgbd "
          f"{k400 * sum(per_frame[k] for k in ('rgb', 'md', 'md_valid', 'rgbr', 'rgbd')) / 1e12:.2f}"
          f" TB; all cues {k400 * sum(per_frame.values()) / 1e12:.2f} TB; mmaction2 "
          f"{k400 * sum(reference.values()) / 1e12:.2f} TB")


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else REFERENCE
    if not os.path.exists(target):
        from dvt_prep.synthetic import write_translating_video

        target = write_translating_video(os.path.join(tempfile.mkdtemp(), "synthetic.mp4"),
                                         height=256, width=340, num_frames=120)
    main(target)
