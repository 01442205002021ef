"""Frame-rate tracks as EDF+ (16 bit) or BDF+ (24 bit) files, written with edfio and read with MNE.

EDF+ is the European Data Format with annotations (Kemp & Olivan 2003, https://www.edfplus.info);
BDF+ is its 24-bit variant. One signal per channel at the frame rate.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..recording.montage import resolve_space
from ..tracks import MuscleTrack, Track

START_ANNOTATION = "EIFER start_s="  # annotation text carrying a track's start time in seconds


def write_track_edf(track: Track, path: str | Path) -> Path:
    """Write a muscle track as EDF+ (16 bit) or BDF+ (24 bit, by the suffix) with edfio.

    Labels are ``"EMG <name>"`` for µV envelopes and ``"MISC <name>"`` with no physical
    dimension for normalised ones, so ``mne.io.read_raw_edf(..., infer_types=True)`` returns
    the channel names and types and ``get_data(units="uV")`` (EMG) or ``get_data()`` (MISC)
    the values (within the file's quantisation: range / 65535 for EDF, / 16777215 for BDF).
    A data record holds a whole number of frames: one second at whole-number rates, 1.001 s at
    the NTSC rates (23.976, 29.97, 59.94 fps). The end is padded to a whole record with edge
    values and marked ``BAD_ACQ_SKIP``, as MNE's own EDF export does. A non-zero
    ``track.start_s`` is kept as an annotation ``"EIFER start_s=<seconds>"`` at onset 0.

    Raises
    ------
    InputError
        Not .edf/.bdf, a frame rate no short record holds a whole number of frames of, NaN or
        infinite values.
    """
    import edfio

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".edf", ".bdf"):
        raise InputError(f"{path}: muscle curves are written as .edf or .bdf here")
    fps = float(track.fps)
    frames_per_record, record_s = _data_record(fps)
    if frames_per_record == 0:
        raise InputError(f"{path}: EDF/BDF need a whole number of frames per data record, which "
                         f"{fps:g} fps does not give (whole-number and NTSC rates do); export CSV instead")
    rate_hz = frames_per_record / record_s  # the rate the header states; fps to within 1e-7
    values = np.asarray(track.values, dtype=np.float64)
    if track.n_frames == 0 or not np.isfinite(values).all():
        raise InputError(f"{path}: the curves are empty or hold NaN/infinite values")
    bad = [n for n in track.names if len(f"MISC {n}") > 16 or not n.isascii()]
    if bad:
        raise InputError(f"{path}: EDF labels hold at most 16 ASCII characters; too long: {', '.join(bad)}")
    n = track.n_frames
    padded_n = int(np.ceil(n / frames_per_record) * frames_per_record)
    values = np.pad(values, ((0, padded_n - n), (0, 0)), mode="edge")
    microvolts = track.units == "uV"
    signal_type = edfio.BdfSignal if suffix == ".bdf" else edfio.EdfSignal
    signals = []
    for column, name in enumerate(track.names):
        row = values[:, column]
        lo, hi = float(row.min()), float(row.max())
        if hi - lo < 1e-9:  # a flat channel still needs a non-empty range
            lo, hi = lo - 1.0, hi + 1.0
        signals.append(signal_type(row, rate_hz, label=f"{'EMG' if microvolts else 'MISC'} {name}",
                                   physical_dimension="uV" if microvolts else "",
                                   physical_range=(lo, hi)))
    annotations = [edfio.EdfAnnotation(n / rate_hz, (padded_n - n) / rate_hz, "BAD_ACQ_SKIP")] if padded_n > n else []
    if track.start_s:  # EDF has no sub-second start offset of its own: keep the track's clock
        annotations.insert(0, edfio.EdfAnnotation(0.0, None, f"{START_ANNOTATION}{float(track.start_s)!r}"))
    container = edfio.Bdf if suffix == ".bdf" else edfio.Edf
    path.parent.mkdir(parents=True, exist_ok=True)
    container(signals, data_record_duration=record_s, annotations=annotations).write(path)
    return path


def _data_record(fps: float) -> tuple[int, float]:
    """(frames per EDF data record, record duration in s), or (0, 0) when no short record fits.

    The duration must survive the header's 8-character text field closely enough that a reader
    gets ``fps`` back: ``round(fps)`` frames per record gives 1 s or, at NTSC rates, 1.001 s.
    The tolerance (1e-7) admits Blender's NTSC rates, whose ``fps_base`` is a float32.
    """
    frames = max(1, int(round(fps)))
    record_s = float(f"{frames / fps:.6f}")
    return (frames, record_s) if abs(frames / record_s - fps) <= 1e-7 * fps else (0, 0.0)


def read_track_edf(path: str | Path) -> Track:
    """Read a file written by :func:`write_track_edf` back as a MuscleTrack (padding dropped).

    EMG channels come back in µV, MISC channels (normalised envelopes) as stored.
    """
    import mne

    path = Path(path)
    reader = {".edf": mne.io.read_raw_edf, ".bdf": mne.io.read_raw_bdf}.get(path.suffix.lower())
    if reader is None:
        raise InputError(f"{path}: expected an .edf or .bdf file")
    try:
        raw = reader(path, infer_types=True, preload=True, verbose="error")
    except Exception as exc:  # MNE raises assorted errors for damaged headers
        raise InputError(f"{path}: not a readable EDF/BDF file ({exc})") from exc
    types = set(raw.get_channel_types())
    if len(types) != 1 or not types <= {"emg", "misc"}:
        raise InputError(f"{path}: mixes channel types {sorted(types)}; muscle curves are all EMG (µV) "
                         f"or all MISC (normalised)")
    microvolts = types == {"emg"}
    data = raw.get_data(units="uV") if microvolts else raw.get_data()
    padding = [a for a in raw.annotations if a["description"] == "BAD_ACQ_SKIP"]
    n = raw.n_times
    if padding:
        n = min(n, int(round(min(a["onset"] for a in padding) * raw.info["sfreq"])))
    start_s = 0.0
    for text in raw.annotations.description:
        if text.startswith(START_ANNOTATION):
            try:
                start_s = float(text[len(START_ANNOTATION):])
            except ValueError:
                raise InputError(f"{path}: unreadable start annotation {text!r}") from None
    return MuscleTrack(data[:, :n].T, raw.ch_names, float(raw.info["sfreq"]), resolve_space(raw.ch_names),
                       "uV" if microvolts else "normalised", start_s, {"source": str(path)})
