"""Many videos on many cores: a process pool on one machine, or a Dask cluster.

Both run the same unit of work, `prep_chunk`: a few videos prepped by one process with its own
StoreWriter. A writer only ever writes the parts it creates, so no two processes share a zarr
shard, and a killed worker loses only the videos of its unflushed part (a rerun redoes them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed

from dvt_prep.batch import PrepReport, prep_videos
from dvt_prep.errors import InputError
from dvt_prep.extract import PrepSettings
from dvt_prep.inputs import VideoInput
from dvt_prep.store_settings import prepare_store

Progress = Callable[[str, str, int], None]  # video id, status, frames


def prep_chunk(videos: list[VideoInput], output: str, settings: PrepSettings,
               retry_failed: bool = False) -> PrepReport:
    """Prep `videos` into the store at `output` with one writer; the pool's and Dask's task.
    Each process computes on `settings.threads` threads (the pool is the parallelism)."""
    return prep_videos(videos, output, settings, retry_failed=retry_failed)


def chunks(videos: list[VideoInput], size: int) -> Iterator[list[VideoInput]]:
    for start in range(0, len(videos), size):
        yield videos[start: start + size]


def _merge(total: PrepReport, part: PrepReport, on_video: Progress | None) -> None:
    total.merge(part)
    if on_video is not None:
        for video_id, status, frames in part.statuses:
            on_video(video_id, status, frames)


def prep_parallel(videos: list[VideoInput], output: str, settings: PrepSettings, *,
                  workers: int = 1, executor: str = "local", scheduler: str | None = None,
                  chunk_size: int = 4, retry_failed: bool = False,
                  on_video: Progress | None = None) -> PrepReport:
    """Prep videos with `workers` processes ("local") or on a Dask cluster ("dask").

    scheduler: a Dask scheduler address, or "local" (the default) to start a LocalCluster with
    `workers` single-threaded worker processes. Raises StoreError before any work when the
    store was made with other settings.
    """
    report = PrepReport()
    if executor == "local" and workers <= 1:
        return prep_videos(videos, output, settings, on_video=on_video,
                           retry_failed=retry_failed)
    # once, before any worker: checks the store's settings (every worker checks again) and
    # creates it, as zarr's group creation is not race-safe
    prepare_store(output, settings.record())
    work = list(chunks(videos, chunk_size))
    if executor == "local":
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(prep_chunk, chunk, output, settings, retry_failed) for chunk in work]
            for future in as_completed(futures):
                _merge(report, future.result(), on_video)
        return report
    if executor != "dask":
        raise InputError(f"unknown executor {executor!r}; use local or dask")
    try:
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_completed
    except ImportError:
        raise InputError("--executor dask needs dask.distributed: pip install 'dvt[dask]'") \
            from None
    cluster = None
    if scheduler in (None, "local"):
        cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); check "
                             "the address") from None
    try:
        futures = [client.submit(prep_chunk, chunk, output, settings, retry_failed, pure=False)
                   for chunk in work]
        for future in dask_completed(futures):
            _merge(report, future.result(), on_video)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return report
