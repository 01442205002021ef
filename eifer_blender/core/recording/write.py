"""Writing recordings: the file's extension picks the format (EDF, BDF, FIF, BrainVision, EEGLAB, XDF, CSV)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..atomic import atomic_file, atomic_folder
from ..errors import InputError
from ._xdf import write_xdf
from .container import Recording, check_finite
from .csvfile import write_csv
from .read import file_format


def _to_raw(recording: Recording):
    import mne

    info = mne.create_info(list(recording.channel_names), float(recording.rate_hz),
                           list(recording.channel_types))
    raw = mne.io.RawArray(np.asarray(recording.data_uv, dtype=np.float64) * 1e-6, info,
                          verbose="error")
    if recording.annotations:
        raw.set_annotations(mne.Annotations(
            [a.onset_s for a in recording.annotations], [a.duration_s for a in recording.annotations],
            [a.description for a in recording.annotations]))
    return raw


def write_recording(recording: Recording, path: str | Path, *, overwrite: bool = True) -> Path:
    """Write a recording; the extension picks the format.

    Parameters
    ----------
    recording : Recording
        Samples in µV; names, types and annotations are written where the format allows.
    path : str or Path
        ``.edf`` (EDF+, 16 bit), ``.bdf`` (BDF+, 24 bit), ``.fif``, ``.vhdr`` (BrainVision,
        float32), ``.set`` (EEGLAB, float64), ``.xdf`` (float64) or ``.csv``.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The written file (for BrainVision, the ``.vhdr`` header), written whole or not at all.
    """
    path = Path(path)
    fmt = file_format(path, for_writing=True)
    if path.exists() and not overwrite:
        raise InputError(f"{path}: file exists (pass overwrite=True to replace it)")
    if recording.n_channels == 0:
        raise InputError(f"{path}: nothing to write, the recording has no channels")
    check_finite(recording.data_uv, recording.channel_names, recording.rate_hz,
                 recording.source or str(path))
    if fmt == "BrainVision":  # three files (.vhdr, .vmrk, .eeg): written together or not at all
        with atomic_folder(path.parent) as folder:
            _write(recording, fmt, folder / path.name)
    else:
        with atomic_file(path) as temporary:
            _write(recording, fmt, temporary)
    return path


def _write(recording: Recording, fmt: str, path: Path) -> None:
    import mne

    if fmt == "EDF":
        # per-channel physical ranges: a quiet channel keeps its resolution beside a loud one
        mne.export.export_raw(path, _to_raw(recording), fmt="edf", add_ch_type=True,
                              physical_range="channelwise", overwrite=True, verbose="error")
    elif fmt == "BDF":
        _write_bdf(recording, path)
    elif fmt == "FIF":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MNE's naming-convention warning (*_raw.fif)
            _to_raw(recording).save(path, overwrite=True, verbose="error")
    elif fmt == "BrainVision":
        mne.export.export_raw(path, _to_raw(recording), fmt="brainvision", overwrite=True,
                              verbose="error")
    elif fmt == "EEGLAB":
        import eeglabio.raw

        ann = recording.annotations
        eeglabio.raw.export_set(
            str(path), np.asarray(recording.data_uv, dtype=np.float64) * 1e-6,
            float(recording.rate_hz), list(recording.channel_names),
            annotations=([a.description for a in ann], np.array([a.onset_s for a in ann]),
                         np.array([a.duration_s for a in ann])) if ann else None,
            ch_types=[t.upper() for t in recording.channel_types], precision="double")
    elif fmt == "XDF":
        write_xdf(recording, path)
    else:
        write_csv(path, recording.data_uv, recording.channel_names, recording.rate_hz,
                   kind="raw", units="uV")


def _write_bdf(recording: Recording, path: Path) -> None:
    # mne.export.export_raw writes EDF, BrainVision and EEGLAB, not BDF (MNE docs); edfio can.
    # Labels carry the type like MNE's EDF export.
    import edfio

    signals = []
    for row, name, ch_type in zip(recording.data_uv, recording.channel_names,
                                  recording.channel_types):
        row = np.asarray(row, dtype=np.float64)
        lo, hi = float(row.min()), float(row.max())
        if hi - lo < 1e-9:
            lo, hi = lo - 1.0, hi + 1.0
        signals.append(edfio.BdfSignal(row, float(recording.rate_hz),
                                       label=f"{ch_type.upper()} {name}", physical_dimension="uV",
                                       physical_range=(lo, hi)))
    annotations = [edfio.EdfAnnotation(a.onset_s, a.duration_s or None, a.description)
                   for a in recording.annotations]
    duration = recording.n_samples / recording.rate_hz
    record_s = 1.0 if float(recording.rate_hz).is_integer() and float(duration).is_integer() else duration
    edfio.Bdf(signals, data_record_duration=record_s, annotations=annotations).write(path)
