"""Stage ①, recordings: a file in, a :class:`Recording` out (samples in µV, rate, names, events).

One private back-end per format family (``_mne`` for EDF/BDF/GDF/BrainVision/EEGLAB/FIF/CNT,
``_xdf``, ``csvfile``), one dispatch on the file's extension (:mod:`.read`, :mod:`.write`), and
the electrode montages (:mod:`.montage`: Fridlund-22, Kuramoto-19) that channel names map onto.
Samples are microvolts everywhere in this package (``data_uv``).
"""
from .container import Annotation, Recording, RecordingSource, check_finite
from .read import (
           READ_FORMATS,
           WRITE_FORMATS,
           file_format,
           open_recording,
           read_recording,
)
from .write import write_recording

__all__ = ["Annotation", "Recording", "RecordingSource", "check_finite", "READ_FORMATS", "WRITE_FORMATS",
           "file_format", "open_recording", "read_recording", "write_recording"]
