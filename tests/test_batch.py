"""A mixed batch of inputs (issue: batch preprocessing), guards, Kinetics CSV input, safe ids."""

from __future__ import annotations

import os
import shutil
from fractions import Fraction

import av
import numpy as np

from dvt_prep import StoreWriter, open_store
from dvt_prep.synthetic import translating_frames, write_video
from tests.conftest import run_dvt


def write_video_with_audio(path, frames, fps: int = 25) -> None:
    """H.264 video plus an AAC sine tone, muxed with PyAV."""
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.height, video.width = frames.shape[1:3]
        video.pix_fmt = "yuv420p"
        audio = container.add_stream("aac", rate=44100)
        audio.layout = "mono"
        samples_per_frame = 44100 // fps
        for t, frame in enumerate(frames):
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            tone = np.sin(2 * np.pi * 440 * (np.arange(samples_per_frame) + t * samples_per_frame)
                          / 44100).astype(np.float32)[None]
            sound = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            sound.sample_rate = 44100
            sound.pts = t * samples_per_frame
            sound.time_base = Fraction(1, 44100)
            container.mux(audio.encode(sound))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))


def test_mixed_batch_of_twelve_inputs(tmp_path, video_dir):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("landscape_sub", "landscape_odd", "portrait_odd"):  # odd sizes, portrait
        shutil.copy(video_dir / f"{name}.mp4", inputs / f"{name}.mp4")
    frames = translating_frames(96, 128, 12, 2.0, 0.0)
    write_video(inputs / "vp9.webm", frames, codec="libvpx-vp9")
    write_video(inputs / "part2.avi", frames, codec="mpeg4", options={"qscale": "2"})
    write_video_with_audio(inputs / "with_audio.mp4", frames)
    write_video(inputs / "long.mp4", translating_frames(64, 64, 40, 1.0, 0.0))
    whole = (video_dir / "landscape_sub.mp4").read_bytes()
    (inputs / "truncated.mp4").write_bytes(whole[: len(whole) // 3])
    (inputs / "empty.mp4").write_bytes(b"")
    (inputs / "notes.mp4").write_text("not a video\n")
    (inputs / "sub").mkdir()
    shutil.copy(video_dir / "landscape_sub.mp4", inputs / "sub" / "nested.mp4")
    write_video(inputs / "sub" / "small.mkv", translating_frames(48, 64, 8, 1.0, 1.0))
    store_path = tmp_path / "s.zarr"
    result = run_dvt("prep", inputs, "-o", store_path, "--cues", "rgb,md", "--size", "64",
                     "--max-frames", "30", "-q")
    assert result.exit_code == 1, result.output  # failures -> non-zero
    assert "Traceback" not in result.output
    store = open_store(store_path)
    good = {"landscape_sub", "landscape_odd", "portrait_odd", "vp9", "part2", "with_audio",
            "sub/nested", "sub/small"}
    assert set(store.video_ids) == good
    failures = store.failures
    assert set(failures) == {"long", "truncated", "empty", "notes"}
    assert "--max-frames 30" in failures["long"]
    assert all(reason.count("\n") == 0 and reason for reason in failures.values())
    assert store.meta("with_audio")["num_frames"] == 12
    assert "8 done, 0 skipped, 4 failed" in result.output
    # The same batch again with --allow-failures: nothing redone, exit 0.
    again = run_dvt("prep", inputs, "-o", store_path, "--cues", "rgb,md", "--size", "64",
                    "--max-frames", "30", "-q", "--allow-failures")
    assert again.exit_code == 0 and "0 done, 8 skipped" in again.output, again.output
    # An id collision (two files, one id) stops before any work.
    shutil.copy(inputs / "vp9.webm", inputs / "landscape_sub.webm")
    clash = run_dvt("prep", inputs, "-o", tmp_path / "other.zarr", "--cues", "md", "-q")
    assert clash.exit_code == 1 and "two inputs map to the video id 'landscape_sub'" in clash.output
    assert not (tmp_path / "other.zarr").exists()


def test_guards_max_pixels_and_time_limit(tmp_path, video_dir):
    result = run_dvt("prep", video_dir / "landscape_odd.mp4", "-o", tmp_path / "a.zarr",
                     "--max-pixels", "10000", "-q")
    assert result.exit_code == 1 and "more than --max-pixels 10000" in result.output
    result = run_dvt("prep", video_dir / "landscape_odd.mp4", "-o", tmp_path / "b.zarr",
                     "--cues", "tvl1", "--time-limit", "0.05", "-q")
    assert result.exit_code == 1 and "took longer than 0.05 s" in result.output
    assert open_store(tmp_path / "b.zarr").video_ids == []


def test_kinetics_annotation_csv_with_root(tmp_path, video_dir):
    root = tmp_path / "k400" / "train"
    (root / "abseiling").mkdir(parents=True)
    shutil.copy(video_dir / "landscape_sub.mp4", root / "abseiling" / "--07WQ2iBlw_000001_000011.mp4")
    shutil.copy(video_dir / "portrait_odd.mp4", root / "zxc_000300_000310.mp4")
    annotations = tmp_path / "train.csv"
    annotations.write_text("label,youtube_id,time_start,time_end,split\n"
                           "abseiling,--07WQ2iBlw,1,11,train\nzumba,zxc,300,310,train\n"
                           "zumba,gone,5,15,train\n")
    result = run_dvt("prep", annotations, "--root", root, "-o", tmp_path / "k.zarr",
                     "--cues", "md", "--size", "64", "-q")
    assert result.exit_code == 1, result.output  # the missing video fails, the others are in
    store = open_store(tmp_path / "k.zarr")
    assert store.video_ids == ["--07WQ2iBlw_000001_000011", "zxc_000300_000310"]
    assert list(store.failures) == ["gone_000005_000015"]


def test_any_video_id_stays_inside_the_store_and_round_trips(tmp_path):
    ids = ["../../escape", "/etc/passwd", "a/../../b", "tab\tand\nnewline", "x" * 600,
           "C:\\windows\\path", ".", "..", "ünïcödé/名前", "same", "Same"]
    arrays = {"md": np.ones((3, 2, 2, 2), np.float32), "md_valid": np.ones((3, 2, 2), np.float32)}
    store_path = tmp_path / "inside" / "s.zarr"
    with StoreWriter(store_path) as writer:
        for i, video_id in enumerate(ids):
            writer.add_video(video_id, {k: v * i for k, v in arrays.items()},
                             {"arrays": list(arrays), "stored_size": [32, 32]})
    store = open_store(store_path)
    assert sorted(store.video_ids) == sorted(ids)
    for i, video_id in enumerate(ids):
        assert np.array_equal(store.read(video_id, "md"), arrays["md"] * i)
    outside = [p for p in os.listdir(tmp_path / "inside") if p != "s.zarr"]
    assert outside == [] and sorted(os.listdir(tmp_path)) == ["inside"]
    for _, _, filenames in os.walk(store_path):
        for name in filenames:
            assert "escape" not in name and "passwd" not in name and len(name) < 255
