"""Batch: many recordings through the same jobs, on a local pool, any Dask cluster or SLURM.

In: a set of recordings (a folder, a glob or a BIDS-EMG data set) and the jobs to run on each
(``process``, ``drive``, ``render``, ``infer``, ``compare``); out: an output tree that mirrors the
input (``OUT/<relative path without suffix>/…``) and a summary (``summary.csv``, ``summary.html``).
No bpy here: each job is a subprocess ``python -m eifer_blender <command>`` (:mod:`.jobs`), and the
engines (:mod:`.engines`) only decide where those subprocesses run.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from ..errors import InputError
from .engines import (
    ENGINES,
    connect,
    default_workers,
    run_dask,
    run_local,
    slurm_cluster,
)
from .items import Recording, find_recordings
from .jobs import (
    JOBS,
    OUTPUTS,
    BatchOptions,
    ItemResult,
    ItemSpec,
    resolve_jobs,
    run_item,
)
from .summary import write_summary

__all__ = ["run", "plan", "find_recordings", "Recording", "ItemResult", "ItemSpec", "BatchOptions", "JOBS",
           "OUTPUTS", "ENGINES", "connect", "default_workers", "slurm_cluster", "run_item", "progress_line",
           "write_summary"]


def plan(inputs, out, jobs=("process", "drive"), options: BatchOptions | None = None) -> list[ItemSpec]:
    """The batch's items, checked, before anything runs (see :func:`run` for the parameters)."""
    jobs = resolve_jobs(jobs)
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file; give a folder")
    options = options or BatchOptions()
    return [ItemSpec(name=r.name, recording=str(r.path), out_dir=str(r.out_dir(out)), jobs=jobs, options=options)
            for r in find_recordings(inputs, out)]


def progress_line(index: int, total: int, result: ItemResult, width: int = 20) -> str:
    """``[3/8] #######............. done     sub-01/emg/sub-01_task-faces_emg  process 2.9 s, drive 3.4 s``:
    one line per finished item, a bar of the share done, so it reads the same in a terminal and a log."""
    digits = len(str(total))
    filled = round(width * index / total) if total else width
    detail = ", ".join(f"{job} {s:.1f} s" for job, s in result.timings_s.items())
    if result.status == "failed":
        detail = result.error + (f" (after {result.attempts} attempts)" if result.attempts > 1 else "")
    elif result.status == "skipped":
        detail = "outputs current"
    return (f"[{index:>{digits}}/{total}] {'#' * filled}{'.' * (width - filled)} {result.status:<8} "
            f"{result.name}  {detail}").rstrip()


def run(inputs, out, *, jobs=("process", "drive"), engine: str = "local", workers: int | None = None,
        scheduler=None, connect_timeout_s: float = 10.0, slurm: dict | None = None,
        options: BatchOptions | None = None, progress: Callable[[str], None] | None = print,
        **option_values) -> list[ItemResult]:
    """Run jobs over many recordings and write the output tree and its summary.

    Parameters
    ----------
    inputs : str | Path | list of str | Path
        Folders (a BIDS-EMG data set is read by its ``sub-*/[ses-*/]emg/*_emg.edf|.bdf`` layout),
        globs (``"data/**/*.bdf"``) or recording files.
    out : str | Path
        The output folder (not inside an input folder). Each recording's outputs go to
        ``out/<its path relative to its input, without suffix>/``, with ``logs/`` and ``batch.json``.
    jobs : str | sequence of str
        Any of ``process`` (envelopes CSV), ``drive`` (animated .blend), ``render`` (.mp4 of the
        driven .blend), ``infer`` (inferred muscles CSV), ``compare`` (metrics CSV of process vs
        infer); the jobs a job reads from are added.
    engine : {"local", "dask", "slurm"}
        ``local``: a process pool of ``workers`` processes (default: one per core). ``dask``: the
        cluster whose scheduler is ``scheduler``. ``slurm``: a dask-jobqueue ``SLURMCluster`` made
        from ``slurm`` (keyword arguments of :func:`.engines.slurm_cluster`) and scaled to
        ``workers`` jobs (default 1).
    workers : int | None
        Local processes, or SLURM jobs.
    scheduler : str | distributed.Client | distributed.LocalCluster | None
        ``tcp://host:8786``, or a cluster or client object, for ``engine="dask"``.
    connect_timeout_s : float
        How long to wait for the Dask scheduler before giving up.
    slurm : dict | None
        ``queue``, ``cores``, ``memory``, ``walltime``, … for ``engine="slurm"``.
    options : BatchOptions | None
        Settings of the jobs; or give its fields as keywords (``fps=30``, ``frames="1:60"``).
    progress : callable | None
        Called with one line per finished item (default: ``print``); None for silence.

    Returns
    -------
    list of ItemResult
        One per recording, in name order. A failed item is retried once (``options.retries``),
        then reported here; it never stops the others.

    Raises
    ------
    InputError
        Before any work: no recordings, an output folder inside an input, an unknown job or
        engine, an unreachable scheduler.
    """
    if options is None:
        options = BatchOptions(**option_values)
    elif option_values:
        raise TypeError("give options= or its fields as keywords, not both")
    if engine not in ENGINES:
        raise InputError(f"--engine {engine}: choose {', '.join(ENGINES)}")
    specs = plan(inputs, out, jobs, options)
    out = Path(out).expanduser().resolve()
    owned = []  # clients and clusters made here, closed here
    try:
        if engine == "local":
            stream = run_local(specs, workers)
        else:
            if engine == "slurm":
                cluster = slurm_cluster(**(slurm or {}))
                owned.append(cluster)
                cluster.scale(jobs=workers or 1)
                scheduler = cluster
            elif scheduler is None:
                raise InputError("--engine dask needs --scheduler tcp://HOST:PORT (a running Dask scheduler)")
            client = connect(scheduler, connect_timeout_s)
            if client is not scheduler:
                owned.append(client)
            stream = run_dask(specs, client)
        results = []
        started = time.perf_counter()
        for i, result in enumerate(stream, start=1):
            results.append(result)
            if progress is not None:
                progress(progress_line(i, len(specs), result))
    finally:
        for thing in reversed(owned):
            thing.close()
    results.sort(key=lambda r: r.name)
    csv_path, html_path = write_summary(results, specs[0].jobs, out)
    if progress is not None:
        counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
        progress(f"{len(results)} items in {time.perf_counter() - started:.1f} s: "
                 + ", ".join(f"{n} {s}" for s, n in counts.items()) + f"; summary {csv_path}, {html_path}")
    return results
