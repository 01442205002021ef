"""Stage ②, envelopes: a Recording in, muscle-activity envelopes at the scene's fps out (a MuscleTrack).

The default chain is the one of the EIFER / "Mimics, Muscles, and Me" release (Büchner et al.,
CVPR 2025; the MMM data release, Zenodo 16636409):

1. per-channel mean removal;
2. monopolar electrode pairs -> bipolar channels (``montage.resolve_channels``);
3. 50 Hz IIR notch, Q = 2, zero phase (``scipy.signal.iirnotch`` + ``sosfiltfilt``);
   60 Hz and harmonics on request;
4. 10-500 Hz FIR band-pass, 129 Hamming taps at 4096 Hz (scaled with the rate), zero phase,
   the upper edge capped below Nyquist;
5. RMS over 0.5 s (2048 samples at 4096 Hz);
6. the envelope evaluated at the frame times ``start_s + k / fps``.

Each step is a public function on ``(channels, samples)`` arrays; :func:`process_recording`
(or :func:`process_source` for a file opened with ``open_recording``) runs them all and returns a
:class:`~eifer_blender.core.tracks.MuscleTrack`. The alternative envelope is rectification plus a
zero-phase Butterworth low-pass, scaled by sqrt(pi/2) so that a Gaussian signal gets the same
level as with RMS.

Definitions that make the result exact are in :mod:`.steps`; chunking is in :mod:`.engine`.
"""
from __future__ import annotations

from .engine import frame_times_within, process_recording, process_source
from .normalise import (
    ACTIVITY_DEFAULTS,
    CALIBRATION_LABELS,
    CALIBRATIONS,
    activity_references,
    marked_segments,
    normalisation_references,
    normalise_envelopes,
)
from .settings import NORMALISATION_METHODS, ProcessingSettings
from .steps import (
                    bandpass_filter,
                    design_bandpass,
                    design_notch,
                    effective_band,
                    fir_zero_phase,
                    notch_filter,
                    notch_frequencies,
                    rectified_envelope_at,
                    remove_mean,
                    rms_at,
)

__all__ = [
    "ProcessingSettings", "process_recording", "process_source", "remove_mean", "notch_filter",
    "notch_frequencies", "design_notch", "design_bandpass", "effective_band", "bandpass_filter",
    "fir_zero_phase", "frame_times_within", "rms_at", "rectified_envelope_at", "normalise_envelopes",
    "normalisation_references", "NORMALISATION_METHODS", "activity_references", "ACTIVITY_DEFAULTS",
    "CALIBRATIONS", "CALIBRATION_LABELS", "marked_segments",
]
