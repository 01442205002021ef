"""One recording's jobs, each as a subprocess ``python -m eifer_blender <command> …``.

This is what a worker runs (in a local process pool, on a Dask worker, in a SLURM job): it needs
only the package installed, and each Blender runs in its own process, so a crash or a leak in
one job cannot take the worker or the other recordings with it. A job whose output is complete,
newer than its inputs and made with the same arguments is not run again (the item's
``batch.json`` remembers the arguments); a failed item is run once more, then reported.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..atomic import atomic_file
from ..errors import InputError

#: the jobs in the order they run; each job's output file in the item's folder
JOBS = ("process", "drive", "render", "infer", "compare")
OUTPUTS = {"process": "envelopes.csv", "drive": "driven.blend", "render": "video.mp4",
           "infer": "muscles.csv", "compare": "metrics.csv"}
#: the jobs whose outputs a job reads (added to a batch that names the job alone)
NEEDS = {"process": (), "drive": (), "render": ("drive",), "infer": ("drive",), "compare": ("process", "infer")}
RECORD = "batch.json"
LOGS = "logs"


def resolve_jobs(jobs) -> tuple[str, ...]:
    """Job names (a list or ``"process,drive"``) with the jobs they need, in running order.

    Raises
    ------
    InputError
        A name that is not a job.
    """
    names = [j.strip() for j in (jobs.split(",") if isinstance(jobs, str) else jobs) if j.strip()]
    unknown = [j for j in names if j not in JOBS]
    if unknown or not names:
        raise InputError(f"--jobs {','.join(names) or '(none)'}: choose from {','.join(JOBS)}"
                         + (f" ({', '.join(unknown)} is not a job)" if unknown else ""))
    wanted: set[str] = set()

    def add(job):
        wanted.add(job)
        for need in NEEDS[job]:
            add(need)

    for job in names:
        add(job)
    return tuple(j for j in JOBS if j in wanted)


@dataclass(frozen=True)
class BatchOptions:
    """Settings shared by every item of a batch.

    Attributes
    ----------
    fps : float
        Frame rate of the envelopes, the driven scene and the inferred muscles.
    frames : str | None
        ``"A:B"``: scene frames to key (drive) and read back (infer); None = all.
    render_frames : str | None
        ``"A:B"``: frames to render; None = those of ``frames``.
    resolution_px : int
        Square render size.
    face : str
        The driven face's object name (the open head's is ``OpenHead``).
    job_timeout_s : float
        A job running longer is stopped and counts as failed.
    retries : int
        How often a failed item is run again before it is reported.
    """

    fps: float = 30.0
    frames: str | None = None
    render_frames: str | None = None
    resolution_px: int = 512
    face: str = "OpenHead"
    job_timeout_s: float = 3600.0
    retries: int = 1


@dataclass(frozen=True)
class ItemSpec:
    """What a worker needs for one recording (plain values: it travels to Dask workers)."""

    name: str
    recording: str
    out_dir: str
    jobs: tuple[str, ...]
    options: BatchOptions = field(default_factory=BatchOptions)


@dataclass
class ItemResult:
    """How one recording went.

    Attributes
    ----------
    name : str
        The item's name (its path relative to the input, without the suffix).
    recording : str
        The recording file.
    out_dir : str
        The item's output folder.
    status : str
        ``done`` (every job ran or was current), ``skipped`` (nothing needed running) or ``failed``.
    error : str
        The failing job's one-line message ("" when it did not fail).
    attempts : int
        Runs of the item (1, or 2 after a retry; 0 when skipped).
    timings_s : dict
        Seconds per job that ran in this batch (jobs found current are left out).
    metrics : dict
        ``frames_keyed`` (drive), ``median_spearman`` (compare), ``envelope_frames`` (process);
        for a skipped item those of the run that made its outputs.
    outputs : dict
        Job → output file.
    """

    name: str
    recording: str
    out_dir: str
    status: str = "failed"
    error: str = ""
    attempts: int = 0
    timings_s: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def job_arguments(job: str, recording: Path, folder: Path, options: BatchOptions) -> list[str]:
    """The command line after ``python -m eifer_blender`` for one job of one item."""
    out = {j: str(folder / name) for j, name in OUTPUTS.items()}
    frames = ["--frames", options.frames] if options.frames else []
    if job == "process":
        return ["process", "--emg", str(recording), "--fps", f"{options.fps:g}", "--out", out["process"]]
    if job == "drive":
        return ["drive", "--emg", str(recording), "--fps", f"{options.fps:g}", "--out", out["drive"], *frames]
    if job == "render":
        shown = options.render_frames or options.frames
        return ["render", "--blend", out["drive"], "--object", options.face, "--out", out["render"],
                "--resolution", str(options.resolution_px), *(["--frames", shown] if shown else [])]
    if job == "infer":
        return ["infer-muscles", "--blend", out["drive"], "--object", options.face, "--out", out["infer"], *frames]
    if job == "compare":
        return ["compare", "--recorded", out["process"], "--inferred", out["infer"], "--csv", out["compare"]]
    raise InputError(f"{job}: not a batch job ({', '.join(JOBS)})")


def _inputs_of(job: str, recording: Path, folder: Path) -> list[Path]:
    needs = NEEDS[job]
    return [folder / OUTPUTS[n] for n in needs] if needs else [recording]


def read_record(folder: Path) -> dict:
    """The item's ``batch.json`` (what made its outputs), or an empty record."""
    try:
        record = json.loads((Path(folder) / RECORD).read_text())
    except (OSError, ValueError):
        return {"jobs": {}}
    return record if isinstance(record.get("jobs"), dict) else {"jobs": {}}


def _current(job: str, args: list[str], record: dict, recording: Path, folder: Path) -> bool:
    """The job's output exists, was made by these arguments and is not older than its inputs."""
    entry = record["jobs"].get(job) or {}
    output = folder / OUTPUTS[job]
    if not (entry.get("ok") and entry.get("args") == args and output.is_file()):
        return False
    made = output.stat().st_mtime
    return all(p.is_file() and p.stat().st_mtime <= made for p in _inputs_of(job, recording, folder))


def _subprocess_env() -> dict:
    """The worker's environment, with this package importable in the child wherever it lives."""
    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join([package_parent, *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def error_line(stderr: str, returncode: int) -> str:
    """The one line that says why a command failed: its ``error:`` line, else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if "error:" in line:
            return line.split("error:", 1)[1].strip()
    return lines[-1] if lines else f"exit code {returncode}"


_KEYED = re.compile(r"^keyed .*: frames (-?\d+)\D+?(-?\d+) at", re.MULTILINE)
_PROCESSED = re.compile(r": (\d+) frames x (\d+) channels", re.MULTILINE)


def _metrics(job: str, stdout: str, folder: Path) -> dict:
    if job == "drive" and (m := _KEYED.search(stdout)):
        return {"frames_keyed": int(m.group(2)) - int(m.group(1)) + 1}
    if job == "process" and (m := _PROCESSED.search(stdout)):
        return {"envelope_frames": int(m.group(1))}
    if job == "compare":
        return {"median_spearman": median_spearman(folder / OUTPUTS["compare"])}
    return {}


def median_spearman(metrics_csv: Path) -> float | None:
    """The ``median`` row's Spearman ρ of a metrics CSV written by ``eifer compare``."""
    try:
        rows = [line.split(",") for line in Path(metrics_csv).read_text().splitlines()
                if line and not line.startswith("#")]
        column = rows[0].index("spearman")
        median = next(r for r in rows if r[0] == "median")
        return float(median[column])
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _write_text(path: Path, text: str) -> None:
    with atomic_file(path) as temporary:
        temporary.write_text(text)


def _run_job(job: str, args: list[str], folder: Path, options: BatchOptions) -> tuple[bool, str, str, float]:
    """(ok, error line, stdout, seconds); the job's stdout and stderr go to ``logs/<job>.log``."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "eifer_blender", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=options.job_timeout_s,
                              env=_subprocess_env(), stdin=subprocess.DEVNULL)
        stdout, stderr, ok = done.stdout, done.stderr, done.returncode == 0
        error = "" if ok else error_line(stderr, done.returncode)
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        ok, error = False, f"stopped after {options.job_timeout_s:g} s (--job-timeout)"
    seconds = time.perf_counter() - started
    _write_text(folder / LOGS / f"{job}.log",
                f"$ {' '.join(command)}\n# {seconds:.2f} s, {'ok' if ok else 'failed: ' + error}\n"
                f"--- stdout\n{stdout}\n--- stderr\n{stderr}\n")
    return ok, error, stdout, seconds


def run_item(spec: ItemSpec) -> ItemResult:
    """Run one recording's jobs (the function a worker runs).

    Parameters
    ----------
    spec : ItemSpec

    Returns
    -------
    ItemResult
        Never raises for a failing job: the failure is the result's ``status`` and ``error``.
    """
    recording, folder, options = Path(spec.recording), Path(spec.out_dir), spec.options
    result = ItemResult(name=spec.name, recording=spec.recording, out_dir=spec.out_dir,
                        outputs={j: str(folder / OUTPUTS[j]) for j in spec.jobs})
    try:
        record = read_record(folder)
        ran_any = False
        for attempt in range(1, options.retries + 2):
            result.error = ""
            for job in spec.jobs:
                args = job_arguments(job, recording, folder, options)
                if _current(job, args, record, recording, folder):
                    continue
                ran_any, result.attempts = True, attempt
                folder.mkdir(parents=True, exist_ok=True)
                ok, error, stdout, seconds = _run_job(job, args, folder, options)
                result.timings_s[job] = round(seconds, 3)
                record["jobs"][job] = {"args": args, "ok": ok, "seconds": round(seconds, 3),
                                       "metrics": _metrics(job, stdout, folder) if ok else {}}
                if not ok:
                    result.error = f"{job}: {error}"
                    break
            if ran_any:
                record["recording"] = spec.recording
                _write_text(folder / RECORD, json.dumps(record, indent=1))
            if not result.error:
                break
        for job in spec.jobs:
            result.metrics.update((record["jobs"].get(job) or {}).get("metrics") or {})
        result.status = "failed" if result.error else ("done" if ran_any else "skipped")
    except Exception as exc:  # a worker must report, never die: the batch goes on with the rest
        result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
    return result


def failed_result(spec: ItemSpec, error: str) -> ItemResult:
    """The result of an item whose worker was lost (a crash, a killed job)."""
    return ItemResult(name=spec.name, recording=spec.recording, out_dir=spec.out_dir, status="failed",
                      error=error, attempts=1)
