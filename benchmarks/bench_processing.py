"""Speed and memory of the sEMG processing chain on an hour of 44-channel, 4096 Hz input.

Row 1: EIFER's chain (mean removal, 44 monopolar -> 22 bipolar Fridlund channels, 50 Hz notch,
10-500 Hz FIR, 0.5 s RMS, 30 fps) on 1 h of synthetic input, chunked (``process_source``), with
the input generated piece by piece (never materialised: 1 h x 44 ch float64 would be 5.2 GB).
The time excludes generating the input (measured inside the source and subtracted).
Baseline, same run: the naive path a user writes with MNE on the whole array -- bipolar and mean
in numpy, ``RawArray``, ``raw.notch_filter(50, picks="emg")`` and ``raw.filter(10, 500,
picks="emg")`` (MNE's default FIR designs), RMS by numpy cumulative sums, frames picked at 30 fps.
The naive path cannot hold an hour in memory here, so it runs on 5 minutes and its time is
scaled x12 (MNE's FIR filtering is linear in length). Goal: >= 5x faster.
Row 2: peak resident memory of each path, each in its own fresh process (so imports count).
Goal <= 1.5 GB for the hour. The naive peak is measured at 5 minutes.
Row 3: chunked vs whole-array processing on the 5-minute slice: largest relative difference.
Rows 4-7: the product's default chain (mains found in the spectrum, its harmonics notched) beside
EIFER's own chain (one 50 Hz notch: today's figures), time and peak memory, on the same hour of
44 monopolar channels and on an hour of a lab's 2 channels (zygomaticus, corrugator) at 2000 Hz.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RATE_HZ = 4096.0
LAB_RATE_HZ = 2000.0
FPS = 30.0
HOUR_S = 3600.0
SLICE_S = 300.0
BANK_S = 10.0  # the synthetic input repeats every 10 s (bursts, hum and offsets included)
ROOT = Path(__file__).resolve().parents[1]


def _bank(seed: int = 0, rate_hz: float = RATE_HZ) -> tuple[np.ndarray, list[str]]:
    """44 monopolar channels (22 sites x 2 electrodes) of 10 s, periodic: Shwedyk carriers with
    bursts (µV), common 50 Hz hum and electrode offsets."""
    from eifer_blender.core.recording.montage import FRIDLUND22

    rng = np.random.default_rng(seed)
    n = int(BANK_S * rate_hz)
    f = np.fft.rfftfreq(n, 1 / rate_hz)
    psd = 120.0 ** 4 * f ** 2 / ((f ** 2 + 60.0 ** 2) * (f ** 2 + 120.0 ** 2) ** 2)
    carrier = np.fft.irfft(np.fft.rfft(rng.standard_normal((44, n)), axis=-1) * np.sqrt(psd), n, axis=-1)
    carrier /= carrier.std(axis=-1, keepdims=True)
    t = np.arange(n) / rate_hz
    level = np.full((44, n), 3.0)
    for ch in range(0, 44, 2):  # a burst per site, seen by both of its electrodes
        start = rng.uniform(0, BANK_S - 2)
        level[ch:ch + 2, (t >= start) & (t < start + 1.5)] = rng.uniform(20, 200)
    hum = 30.0 * np.sin(2 * np.pi * 50.0 * t)  # 500 whole cycles: periodic with the bank
    bank = carrier * level + hum + rng.uniform(-200, 200, size=(44, 1))
    names = [f"{site}_{e}" for site in FRIDLUND22 for e in (1, 2)]
    return bank, names


class _TimedSource:
    """Reads of a periodic bank, with the time spent producing samples accumulated."""

    def __init__(self, bank: np.ndarray, seconds: float, rate_hz: float = RATE_HZ):
        self.bank = bank
        self.n_samples = int(seconds * rate_hz)
        self.generate_s = 0.0

    def __call__(self, a: int, b: int) -> np.ndarray:
        started = time.perf_counter()
        idx = np.arange(a, b) % self.bank.shape[1]
        out = np.take(self.bank, idx, axis=1)
        self.generate_s += time.perf_counter() - started
        return out


def _peak_rss_mb() -> float:
    """Peak resident memory of this process since it started.

    Linux keeps ``ru_maxrss`` across fork and exec, so a child started by a parent that had
    grown (the other benchmarks run first in ``python -m benchmarks``) would report the parent's
    peak; ``VmHWM`` belongs to the process's own address space and starts afresh at exec.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _child_ours(chain: str = "eifer", channels: int = 44) -> dict:
    from eifer_blender.core.envelopes import ProcessingSettings, process_source
    from eifer_blender.core.recording import RecordingSource

    rate = RATE_HZ if channels == 44 else LAB_RATE_HZ
    bank, names = _bank(rate_hz=rate)
    if channels == 2:  # a lab's zygomaticus and corrugator, already bipolar, at 2000 Hz
        bank, names = np.stack([bank[38] - bank[39] + bank[0], bank[4] - bank[5] + bank[0]]), ["EMG_zyg", "EMG_cor"]
    reader = _TimedSource(bank, HOUR_S, rate)
    source = RecordingSource(rate, names, ["emg"] * len(names), reader.n_samples, reader,
                             source="synthetic 1 h")
    settings = (ProcessingSettings.eifer(chunk_s=60.0, side="left") if chain == "eifer"
                else ProcessingSettings(chunk_s=60.0, side="left"))
    started = time.perf_counter()
    track = process_source(source, FPS, settings)
    total = time.perf_counter() - started
    return {"total_s": total, "generate_s": reader.generate_s, "process_s": total - reader.generate_s,
            "peak_rss_mb": _peak_rss_mb(), "frames": track.n_frames, "channels": len(track.names)}


def _child_naive() -> dict:
    import mne

    from eifer_blender.core.recording.montage import FRIDLUND22

    mne.set_log_level("ERROR")
    bank, _ = _bank()
    reader = _TimedSource(bank, SLICE_S)
    data = reader(0, reader.n_samples)  # 5 min x 44 ch in memory (not timed)
    started = time.perf_counter()
    bipolar = data[0::2] - data[1::2]
    bipolar -= bipolar.mean(axis=1, keepdims=True)
    raw = mne.io.RawArray(bipolar * 1e-6, mne.create_info(list(FRIDLUND22), RATE_HZ, "emg"))
    raw.notch_filter(50.0, picks="emg")
    raw.filter(10.0, 500.0, picks="emg")
    y = raw.get_data(picks="emg", units="uV")
    cumulative = np.concatenate([np.zeros((y.shape[0], 1)), np.cumsum(y * y, axis=1)], axis=1)
    n = y.shape[1]
    centre = np.round(np.arange(int((n - 1) / RATE_HZ * FPS) + 1) * RATE_HZ / FPS).astype(int)
    lo, hi = np.clip(centre - 1024, 0, n), np.clip(centre + 1024, 0, n)
    envelopes = np.sqrt((cumulative[:, hi] - cumulative[:, lo]) / (hi - lo)).T
    total = time.perf_counter() - started
    return {"process_s": total, "peak_rss_mb": _peak_rss_mb(), "frames": envelopes.shape[0]}


def _child_seams() -> dict:
    from eifer_blender.core.envelopes import ProcessingSettings, process_source
    from eifer_blender.core.recording import RecordingSource

    bank, names = _bank()
    reader = _TimedSource(bank, SLICE_S)
    source = RecordingSource(RATE_HZ, names, ["emg"] * 44, reader.n_samples, reader)
    chunked = process_source(source, FPS, ProcessingSettings.eifer(chunk_s=60.0)).values
    whole = process_source(source, FPS, ProcessingSettings.eifer(chunk_s=None)).values
    return {"max_rel": float(np.max(np.abs(chunked - whole) / np.abs(whole)))}


def _run_child(which: str) -> dict:
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), which], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _default_rows() -> list[dict]:
    out = []
    for channels, shape in ((44, "1 h x 44 mono ch x 4096 Hz"), (2, "1 h x 2 ch x 2000 Hz (zyg, corr)")):
        default, eifer = _run_child(f"default-{channels}"), _run_child(f"eifer-{channels}")
        out += [
            {"measure": f"process {shape}, default chain, time", "value": default["process_s"], "unit": "s",
             "baseline": eifer["process_s"], "ratio": default["process_s"] / eifer["process_s"],
             "note": "ratio = cost of finding the mains and notching its harmonics; baseline = EIFER's "
                     "chain (one 50 Hz notch), same input, same run"},
            {"measure": f"process {shape}, default chain, peak memory", "value": default["peak_rss_mb"],
             "unit": "MB", "baseline": eifer["peak_rss_mb"], "ratio": default["peak_rss_mb"] / eifer["peak_rss_mb"],
             "note": "peak RSS of a fresh process each; baseline = EIFER's chain"},
        ]
    return out


def rows() -> list[dict]:
    ours = _run_child("eifer-44")
    naive = _run_child("naive")
    seams = _run_child("seams")
    scale = HOUR_S / SLICE_S
    naive_hour_s = naive["process_s"] * scale
    shape = "1 h x 44 mono ch x 4096 Hz -> 22 bipolar @30 fps"
    return [
        {"measure": f"process {shape}, time", "value": ours["process_s"], "unit": "s",
         "baseline": naive_hour_s, "ratio": naive_hour_s / ours["process_s"],
         "note": f"ratio = speed-up (goal >= 5); baseline = naive MNE path on {SLICE_S / 60:g} min "
                 f"x{scale:g} ({naive['process_s']:.2f} s measured); input generation "
                 f"({ours['generate_s']:.1f} s, two passes) excluded"},
        {"measure": f"process {shape}, peak memory", "value": ours["peak_rss_mb"], "unit": "MB",
         "baseline": naive["peak_rss_mb"], "ratio": ours["peak_rss_mb"] / naive["peak_rss_mb"],
         "note": f"peak RSS of a fresh process (imports included); goal <= 1536 MB; baseline = "
                 f"naive path at {SLICE_S / 60:g} min only (its data alone would be "
                 f"{44 * HOUR_S * RATE_HZ * 8 / 2 ** 30:.1f} GB for the hour)"},
        {"measure": "chunked vs whole-array, 5 min x 22 ch", "value": seams["max_rel"], "unit": "rel",
         "baseline": 1e-6, "ratio": seams["max_rel"] / 1e-6,
         "note": "largest relative difference of the envelopes; acceptance <= 1e-6"},
    ] + _default_rows()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    which = sys.argv[1]
    if which.startswith(("default-", "eifer-")):
        chain, channels = which.split("-")
        print(json.dumps(_child_ours(chain, int(channels))))
    else:
        print(json.dumps({"naive": _child_naive, "seams": _child_seams}[which]()))
