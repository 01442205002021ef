"""Batches: 8 recordings (process + drive each) on the local pool and on a 2-worker Dask cluster.

Row 1: the local engine (a process pool, one worker per core) against a sequential loop over the
same items in this process (``run_item`` one after another), measured in the same run; the ratio
is the speed-up the pool gives on this machine's cores.
Row 2: a 2-worker ``distributed.LocalCluster`` (processes, no dashboard) against the same loop:
what the Dask path costs or gains over the plain pool on one machine.
Each recording: 20 s of the emotions protocol at 2048 Hz, 22 channels (``simulate_session``).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.timing import timed

N_RECORDINGS = 8
DURATION_S = 20.0
JOBS = "process,drive"


def _recordings(folder: Path) -> None:
    from eifer_blender.core.simulator.session import simulate_session, write_session
    from eifer_blender.core.simulator.synthesis import make_subject

    for i in range(N_RECORDINGS):
        session = simulate_session("emotions", make_subject(i + 1), DURATION_S, rate_hz=2048.0, seed=i)
        write_session(session, folder / f"sub-{i + 1:02d}_emg.edf")


def rows() -> list[dict]:
    from eifer_blender.core import batch
    from eifer_blender.core.batch.engines import default_workers

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        _recordings(tmp / "in")
        specs = batch.plan(tmp / "in", tmp / "sequential", JOBS)
        sequential_s, results = timed(lambda: [batch.run_item(spec) for spec in specs])
        assert all(r.status == "done" for r in results), [r.error for r in results]
        local_s, local = timed(lambda: batch.run(tmp / "in", tmp / "local", jobs=JOBS, progress=None))
        assert all(r.status == "done" for r in local), [r.error for r in local]
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            dask_s, on_dask = timed(lambda: batch.run(tmp / "in", tmp / "dask", jobs=JOBS, engine="dask",
                                                       scheduler=cluster.scheduler_address, progress=None))
        assert all(r.status == "done" for r in on_dask), [r.error for r in on_dask]
    items = f"{N_RECORDINGS} recordings x {DURATION_S:g} s, jobs {JOBS}"
    return [
        {"measure": f"batch, local engine ({default_workers()} workers)", "value": local_s, "unit": "s",
         "baseline": sequential_s, "ratio": sequential_s / local_s,
         "note": f"baseline: the same items one after another in one loop; {items}"},
        {"measure": "batch, Dask LocalCluster (2 worker processes)", "value": dask_s, "unit": "s",
         "baseline": sequential_s, "ratio": sequential_s / dask_s,
         "note": f"baseline: the sequential loop; cluster start-up not counted; {items}"},
    ]
