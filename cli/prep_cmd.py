"""`dvt prep INPUT... -o STORE`."""

from __future__ import annotations

import sys

import click

from dvt_prep.cue_names import CUE_GRIDS, CUE_NAMES, DEFAULT_CUES, FLOW_BACKENDS, RGB_CODECS
from dvt_prep.errors import InputError


def _cue_list(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    cues = tuple(c.strip() for c in value.split(",") if c.strip())
    unknown = [c for c in cues if c not in CUE_NAMES]
    if unknown or not cues:
        raise click.BadParameter(f"unknown cue(s) {', '.join(unknown) or '(none)'}; choose from "
                                 f"{', '.join(CUE_NAMES)}")
    return cues


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True, help="Store path (a zarr v3 directory).")
@click.option("--cues", default=",".join(DEFAULT_CUES), show_default=True, callback=_cue_list,
              help=f"Comma-separated cues: {', '.join(CUE_NAMES)}.")
@click.option("--size", default=256, show_default=True, type=int,
              help="Short side after the canonical re-encode, a multiple of 16.")
@click.option("--fps", default=None, type=float, help="Constant frame rate (default: source).")
@click.option("--cue-grid", default=4, show_default=True, type=click.Choice([str(g) for g in CUE_GRIDS]),
              help="Cell size in pixels over which rgbr, rgbd and tvl1 are averaged.")
@click.option("--rgb-codec", default=None, type=click.Choice(RGB_CODECS),
              help="How rgb frames are stored: h264 (the canonical stream itself; rgbr and "
                   "rgbd are then computed when read; the default), jpeg (q95, the default "
                   "with --no-reencode) or lossless.")
@click.option("--gop", default=16, show_default=True, type=int, help="I-frame interval.")
@click.option("--crf", default=23, show_default=True, type=int, help="x264 quality.")
@click.option("--preset", default="superfast", show_default=True, help="x264 preset.")
@click.option("--no-reencode", is_flag=True,
              help="Use the source stream's own motion vectors (no canonical re-encode).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes (local pool or LocalCluster).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1),
              help="Compute threads per process (OpenCV, torch TV-L1, decoder); --workers "
              "and Dask are the parallelism.")
@click.option("--executor", default="local", show_default=True,
              type=click.Choice(["local", "dask"]), help="Process pool or Dask.")
@click.option("--scheduler", default="local", show_default=True,
              help="Dask scheduler address, or 'local' for a LocalCluster.")
@click.option("--flow-backend", default="torch", show_default=True,
              type=click.Choice(FLOW_BACKENDS),
              help="TV-L1 by dvt's batched PyTorch TV-L1, or by OpenCV's DualTVL1.")
@click.option("--flow-device", default="cpu", show_default=True,
              help="Device of the torch TV-L1: cpu, cuda, cuda:1, ...")
@click.option("--root", type=click.Path(file_okay=False),
              help="Folder that list entries and Kinetics CSV ids are relative to.")
@click.option("--max-pixels", type=int, help="Fail videos larger than this (width x height).")
@click.option("--max-frames", type=int, help="Fail videos with more frames than this.")
@click.option("--time-limit", type=float, help="Fail a video that takes longer (seconds).")
@click.option("--retry-failed", is_flag=True, help="Try videos that failed before again.")
@click.option("--overwrite", is_flag=True,
              help="Delete the store first and prep anew (for other settings than it has).")
@click.option("--allow-failures", is_flag=True, help="Exit 0 even when some videos failed.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; print only the summary.")
@click.option("--log", "log_path", type=click.Path(dir_okay=False),
              help="Append one line per video (id, status) to this file.")
def prep(inputs: tuple[str, ...], output: str, cues: tuple[str, ...], size: int,
         fps: float | None, cue_grid: str, rgb_codec: str, gop: int, crf: int, preset: str,
         no_reencode: bool, workers: int, threads: int, executor: str, scheduler: str, flow_backend: str,
         flow_device: str,
         root: str | None,
         max_pixels: int | None, max_frames: int | None, time_limit: float | None,
         retry_failed: bool, overwrite: bool, allow_failures: bool, quiet: bool,
         log_path: str | None) -> None:
    """Extract motion cues from videos (files, folders, .txt/.csv lists, Kinetics annotation
    CSVs with --root) into STORE."""
    from tqdm import tqdm

    from dvt_prep.encode import EncodeSettings
    from dvt_prep.extract import PrepSettings, check_flow_device_here
    from dvt_prep.inputs import collect_inputs
    from dvt_prep.parallel import prep_parallel
    from dvt_prep.store_layout import consolidate, delete_store
    from dvt_prep.store_settings import check_settings

    encode = EncodeSettings(size=size, fps=fps, gop=gop, crf=crf, preset=preset)
    settings = PrepSettings(cues=cues, cue_grid=int(cue_grid), reencode=not no_reencode,
                            encode=encode, rgb_codec=rgb_codec, flow_backend=flow_backend,
                            flow_device=flow_device, max_pixels=max_pixels,
                            max_frames=max_frames, time_limit=time_limit, threads=threads)
    if executor == "local" or scheduler == "local":
        check_flow_device_here(settings)
    videos = collect_inputs(list(inputs), root=root)
    if not videos:
        raise InputError(f"no video files found in {', '.join(inputs)}; check the paths")
    if overwrite:
        delete_store(output)
    else:
        check_settings(output, settings.record())  # before the progress bar (prep checks too)

    log = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
    bar = tqdm(total=len(videos), unit="video", disable=quiet, dynamic_ncols=True)
    counts = {"frames": 0, "failed": 0}

    def progress(video_id: str, status: str, frames: int) -> None:
        failed = status.startswith("failed")
        counts["frames"] += frames
        counts["failed"] += failed
        elapsed = max(bar.format_dict["elapsed"], 1e-6)
        bar.set_postfix(frames_per_s=f"{counts['frames'] / elapsed:.0f}",
                        failed=counts["failed"], refresh=False)
        bar.update(1)
        if failed and not quiet:
            bar.write(f"{video_id}: {status}", file=sys.stderr)
        if log is not None:
            log.write(f"{video_id}\t{status}\n")
            log.flush()

    try:
        report = prep_parallel(videos, output, settings, workers=workers, executor=executor,
                               scheduler=scheduler, retry_failed=retry_failed,
                               on_video=progress)
    finally:
        bar.close()
        if log is not None:
            log.close()
    consolidate(output)  # one index file: opening a store of many parts stays fast
    click.echo(report.summary())
    if report.failed and not allow_failures:
        sys.exit(1)
