"""Where the items run: a local process pool, any Dask cluster, or a SLURM cluster through dask-jobqueue.

Each engine maps :func:`.jobs.run_item` over the items and yields results as they finish, so the
caller prints one progress line per item. A lost worker (a crash, a killed SLURM job) becomes a
failed item, never a stopped batch.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Iterator

from ..errors import InputError
from .jobs import ItemResult, ItemSpec, failed_result, run_item

ENGINES = ("local", "dask", "slurm")


def default_workers() -> int:
    """The cores this process may use (``os.sched_getaffinity`` where the OS has it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def run_local(specs: list[ItemSpec], workers: int | None = None) -> Iterator[ItemResult]:
    """The items on a process pool of ``workers`` processes (default: one per core)."""
    workers = max(1, min(workers or default_workers(), len(specs)))
    # spawn, not fork: the caller may hold threads (a Dask client, a test runner), and forking a
    # threaded process can deadlock the child (Python docs, multiprocessing "Contexts and start methods")
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_item, spec): spec for spec in specs}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as exc:  # BrokenProcessPool: the worker process died
                yield failed_result(futures[future], f"worker lost: {type(exc).__name__}: {exc}")


def connect(scheduler, timeout_s: float = 10.0):
    """A ``distributed.Client`` on a running scheduler (an address, a cluster object or a client).

    Raises
    ------
    InputError
        ``distributed`` is not installed, or no scheduler answers at the address within ``timeout_s``.
    """
    try:
        from distributed import Client
    except ImportError:
        raise InputError("--engine dask needs the 'distributed' package: pip install distributed") from None
    if isinstance(scheduler, Client):
        return scheduler
    try:
        # Client(address, timeout=...) gives up connecting after `timeout` seconds
        # (docs.dask.org/projects/distributed, "Client" API)
        return Client(scheduler, timeout=timeout_s, set_as_default=False)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"--scheduler {scheduler}: no Dask scheduler answers there within {timeout_s:g} s "
                         f"({reason}); start one (dask scheduler) or check the address") from None


def run_dask(specs: list[ItemSpec], client) -> Iterator[ItemResult]:
    """The items as Dask tasks on ``client``'s cluster, one task per recording."""
    from distributed import as_completed as dask_completed

    # pure=False: a rerun must run again, not reuse a result the scheduler still holds
    # (docs.dask.org/projects/distributed, "Client.submit")
    futures = {client.submit(run_item, spec, pure=False, key=f"eifer-batch-{i}-{spec.name}"): spec
               for i, spec in enumerate(specs)}
    for future in dask_completed(list(futures), loop=client.loop):
        try:
            yield future.result()
        except Exception as exc:  # KilledWorker, a lost connection
            yield failed_result(futures[future], f"worker lost: {type(exc).__name__}: {exc}")
        finally:
            future.release()


def slurm_cluster(*, queue: str | None = None, cores: int = 4, memory: str = "8GB", walltime: str = "01:00:00",
                  account: str | None = None, job_extra: list[str] | None = None, python: str | None = None,
                  **kwargs):
    """A dask-jobqueue ``SLURMCluster`` configured from the batch options (no job is submitted yet).

    Parameters
    ----------
    queue : str | None
        SLURM partition (``#SBATCH -p``).
    cores : int
        Cores per SLURM job; the job runs one Dask worker with that many threads, each thread one
        recording at a time (its Blender in its own process).
    memory : str
        Memory per job, e.g. ``"16GB"``.
    walltime : str
        ``HH:MM:SS`` per job.
    account : str | None
        SLURM account (``#SBATCH -A``).
    job_extra : list of str | None
        More ``#SBATCH`` directives, e.g. ``["--gres=gpu:1"]``.
    python : str | None
        The workers' Python (default: this one); it needs ``eifer_blender`` importable.
    **kwargs
        Passed on to ``SLURMCluster``.

    Returns
    -------
    dask_jobqueue.SLURMCluster
        Scale it (``cluster.scale(jobs=N)``) to submit jobs; close it when done.
    """
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise InputError("--engine slurm needs dask-jobqueue: pip install dask-jobqueue") from None
    import sys

    # one worker process per job (processes=1) with `cores` threads: the tasks only wait on
    # subprocesses, so threads are enough (dask-jobqueue docs, "How to configure", cores/processes)
    return SLURMCluster(queue=queue, account=account, cores=cores, processes=1, memory=memory,
                        walltime=walltime, job_extra_directives=list(job_extra or []),
                        python=python or sys.executable, **kwargs)
