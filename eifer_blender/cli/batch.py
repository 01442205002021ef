"""``eifer batch``: many recordings through process/drive/render/infer/compare, locally, on Dask or SLURM."""
from __future__ import annotations

import argparse

HELP = ("run jobs (process, drive, render, infer, compare) over a folder, glob or BIDS-EMG data set, "
        "on a local pool, a Dask cluster or SLURM, into a mirrored output tree with a summary")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="a folder (searched recursively), a glob ('data/**/*.bdf', quoted) or a BIDS-EMG "
                             "data set (sub-*/[ses-*/]emg/*_emg.edf|.bdf)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder, outside the inputs: DIR/<relative path without suffix>/… and "
                             "DIR/summary.csv, DIR/summary.html")
    parser.add_argument("--jobs", default="process,drive", metavar="LIST",
                        help="comma-separated: process (envelopes.csv), drive (driven.blend), render (video.mp4), "
                             "infer (muscles.csv), compare (metrics.csv); the jobs they need are added "
                             "(default: process,drive)")
    parser.add_argument("--engine", choices=("local", "dask", "slurm"), default="local",
                        help="local process pool (default), an existing Dask cluster, or SLURM via dask-jobqueue")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="local: processes (default: one per core); slurm: SLURM jobs (default 1)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="--engine dask: the scheduler's address")
    parser.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                        help="seconds to wait for the Dask scheduler (default 10)")
    slurm = parser.add_argument_group("--engine slurm (dask-jobqueue SLURMCluster)")
    slurm.add_argument("--queue", help="SLURM partition")
    slurm.add_argument("--account", help="SLURM account")
    slurm.add_argument("--cores", type=int, default=4, help="cores per SLURM job (default 4)")
    slurm.add_argument("--memory", default="8GB", help="memory per SLURM job (default 8GB)")
    slurm.add_argument("--walltime", default="01:00:00", help="wall time per SLURM job (default 01:00:00)")
    jobs = parser.add_argument_group("job settings")
    jobs.add_argument("--fps", type=float, default=30.0, help="frame rate of envelopes, scene and muscles (default 30)")
    jobs.add_argument("--frames", metavar="A:B", help="scene frames to key and infer (default: all)")
    jobs.add_argument("--render-frames", metavar="A:B", help="frames to render (default: --frames)")
    jobs.add_argument("--resolution", type=int, default=512, help="square render size in pixels (default 512)")
    jobs.add_argument("--object", default="OpenHead", help="the driven face's name (default OpenHead, the open head)")
    jobs.add_argument("--job-timeout", type=float, default=3600.0, metavar="S",
                      help="stop a job after this many seconds and count it failed (default 3600)")
    jobs.add_argument("--retries", type=int, default=1, help="reruns of a failed item (default 1)")


def run(args: argparse.Namespace) -> int:
    import sys

    from ..core.batch import BatchOptions
    from ..core.batch import run as run_batch
    from ..core.errors import InputError
    from ._args import parse_frames, require_number

    parse_frames(args.frames)
    parse_frames(args.render_frames)
    require_number("--fps", args.fps, above=0)
    require_number("--resolution", args.resolution, above=0)
    require_number("--job-timeout", args.job_timeout, above=0)
    require_number("--connect-timeout", args.connect_timeout, above=0)
    require_number("--retries", args.retries, minimum=0)
    require_number("--workers", args.workers, minimum=1)
    if args.engine != "dask" and args.scheduler:
        raise InputError("--scheduler is for --engine dask")
    options = BatchOptions(fps=args.fps, frames=args.frames, render_frames=args.render_frames,
                           resolution_px=args.resolution, face=args.object, job_timeout_s=args.job_timeout,
                           retries=args.retries)
    slurm = {"queue": args.queue, "account": args.account, "cores": args.cores, "memory": args.memory,
             "walltime": args.walltime}
    results = run_batch(args.inputs, args.out, jobs=args.jobs, engine=args.engine, workers=args.workers,
                        scheduler=args.scheduler, connect_timeout_s=args.connect_timeout, slurm=slurm,
                        options=options, progress=lambda line: print(line, flush=True))
    failed = [r for r in results if r.status == "failed"]
    if failed:
        print(f"eifer batch: {len(failed)} of {len(results)} items failed (see summary.csv)", file=sys.stderr)
        return 3
    return 0
