"""The causal chain: envelopes from samples up to "now" only, the same code on a whole array and on a stream.

In: raw sEMG (channels, samples) in µV, in chunks of any size; out: envelopes at the frame times
``k / fps`` (frame 0 at the first sample), each as soon as its last sample has arrived.

Definitions that make the result exact whatever the chunking
    * Filters: the mains notches (:func:`.mains.mains_notches`: the fundamental with ``notch_q``,
      harmonics with k · ``harmonic_q``), the drift high-pass (2nd-order Butterworth) and a
      Butterworth band-pass (order :data:`BAND_ORDER`, ``band_hz`` with the upper edge capped at
      ``nyquist_fraction`` of Nyquist), run forward only as one SOS cascade by
      ``scipy.signal.sosfilt``; the state ``zi`` is carried from chunk to chunk. The state starts
      as the steady state of a constant input equal to the first sample (``sosfilt_zi`` × first
      sample), so an electrode offset does not ring through the first seconds. There is no mean
      removal (``remove_mean`` is ignored: a stream has no mean yet); the filters remove DC.
    * RMS at frame k: ``sqrt(mean(y**2))`` over the ``W = round(rms_window_s * rate_hz)`` samples up
      to and including sample ``j_k = floor(k * rate_hz / fps)`` (all samples so far while fewer
      than W have arrived). Each frame's sum is taken over a contiguous copy of its own W squared
      samples, so it is the same sum of the same numbers in the same order however the samples
      were chunked (a running cumulative sum is cheaper but its rounding depends on where chunks
      start); W × channels additions per frame cost nothing at frame rates.
    * Rectify: ``|y|`` through a causal Butterworth low-pass (``rectify_lowpass_hz``,
      ``rectify_order``; zero initial state), sampled at ``j_k``, times sqrt(pi/2).
    * Missing samples (NaN/Inf): refused with ``nan_policy="raise"``; otherwise each one holds the
      channel's last finite sample (the causal counterpart of interpolation).

Latency: a trailing window of W samples lags the signal by its group delay, (W - 1) / 2 samples
(62 ms for 0.125 s); the filters add a few milliseconds in the EMG band. Both are reported in
``info()["latency_s"]``.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import signal

from ..errors import InputError
from ..recording import Recording, RecordingSource, check_finite
from ..recording.montage import resolve_space
from ..tracks import MuscleTrack
from .mains import DEFAULT_MAINS_HZ, mains_notches
from .selection import select_channels
from .settings import ProcessingSettings
from .steps import RECTIFY_TO_RMS, design_notch, effective_band

BAND_ORDER = 4  # Butterworth order of each band edge (an 8th-order band-pass, 4 SOS sections)
CAUSAL_RMS_WINDOW_S = 0.125
MAX_GATHER = 4_000_000  # values gathered per frame group when summing windows (bounds memory)
# the causal chain's defaults on top of ProcessingSettings: a short trailing window, a stated mains
# frequency (a stream has no spectrum to look at yet), its harmonics and the drift high-pass
CAUSAL_DEFAULTS = {"rms_window_s": CAUSAL_RMS_WINDOW_S, "notch_hz": (DEFAULT_MAINS_HZ,), "notch_harmonics": True,
                   "drift_highpass_hz": 10.0, "normalise": "none"}


def causal_settings(**overrides) -> ProcessingSettings:
    """``ProcessingSettings`` for the causal chain: :data:`CAUSAL_DEFAULTS` plus ``overrides``."""
    return ProcessingSettings(**{**CAUSAL_DEFAULTS, **overrides})


def causal_fundamentals(settings: ProcessingSettings) -> tuple[tuple[float, ...], str]:
    """The mains fundamentals the causal chain notches, and a note: ``"auto"`` cannot look at a
    spectrum that has not arrived yet, so it means 50 Hz (EIFER's notch); say 60 in the Americas."""
    if isinstance(settings.notch_hz, str):
        return (DEFAULT_MAINS_HZ,), (f"mains not known ahead of a stream: {DEFAULT_MAINS_HZ:g} Hz notched "
                                     f"(set notch_hz=(60.0,) for 60 Hz mains)")
    fundamentals = tuple(float(f) for f in settings.notch_hz)
    return fundamentals, (f"{', '.join(f'{f:g}' for f in fundamentals)} Hz notched as set" if fundamentals
                          else "no notch")


class CausalChain:
    """The causal chain for one stream: feed it chunks, get the envelope frames they complete.

    Parameters
    ----------
    rate_hz : float
        Sampling rate of the samples fed.
    n_channels : int
        Rows of every chunk (the derived channels: one per site).
    fps : float
        Envelope frame rate; frame k lies at ``k / fps`` seconds after the first sample.
    settings : ProcessingSettings
        Notch, drift high-pass, band, envelope, window and NaN policy (see :func:`causal_settings`).
    fundamentals_hz : tuple of float, optional
        Mains fundamentals to notch (default: from ``settings``, see :func:`causal_fundamentals`).
    source : str
        Name used in error messages.
    """

    def __init__(self, rate_hz: float, n_channels: int, fps: float,
                 settings: ProcessingSettings | None = None, *, fundamentals_hz=None, source: str = "stream"):
        settings = settings or causal_settings()
        if not fps > 0:
            raise InputError(f"fps must be positive, got {fps}")
        if n_channels < 1:
            raise InputError(f"{source}: no channels to process")
        self.rate_hz, self.fps, self.n_channels, self.settings = float(rate_hz), float(fps), int(n_channels), settings
        self.source = source
        if fundamentals_hz is None:
            fundamentals_hz, self.mains_note = causal_fundamentals(settings)
        else:
            fundamentals_hz = tuple(float(f) for f in fundamentals_hz)
            self.mains_note = f"{', '.join(f'{f:g}' for f in fundamentals_hz)} Hz notched as set"
        band = (effective_band(rate_hz, settings.band_hz, settings.nyquist_fraction, source)
                if settings.band_hz else None)
        notches = mains_notches(rate_hz, fundamentals_hz, harmonics=settings.notch_harmonics, q=settings.notch_q,
                                harmonic_q=settings.harmonic_q, upper_hz=band[1] if band else None)
        sections = [design_notch(rate_hz, f, q) for f, q in notches]
        if settings.drift_highpass_hz is not None:
            sections.append(signal.butter(2, settings.drift_highpass_hz, btype="highpass", fs=rate_hz, output="sos"))
        if band is not None:
            sections.append(signal.butter(BAND_ORDER, band, btype="bandpass", fs=rate_hz, output="sos"))
        self.sos = np.concatenate(sections) if sections else None
        self.notch_applied_hz = tuple(f for f, _ in notches)
        self.band_applied_hz = band
        self.fundamentals_hz = tuple(fundamentals_hz)
        self.window = max(1, int(round(settings.rms_window_s * rate_hz)))
        self.lowpass = None
        if settings.envelope == "rectify":
            self.lowpass = signal.butter(settings.rectify_order, settings.rectify_lowpass_hz, btype="lowpass",
                                         fs=rate_hz, output="sos")
        self._ratio = self.rate_hz / self.fps
        self._zi = None
        self._lowpass_zi = None
        self._last_finite = None
        self._tail = np.zeros((self.n_channels, 0))  # the last W - 1 squared (or smoothed) samples
        self.samples_seen = 0
        self.next_frame = 0

    def info(self) -> dict:
        """What the chain applies, for a track's ``meta["processing"]``."""
        lag = (self.window - 1) / 2 / self.rate_hz if self.lowpass is None else 0.0
        return {"causal": True, "notch_applied_hz": list(self.notch_applied_hz),
                "band_applied_hz": list(self.band_applied_hz) if self.band_applied_hz else None,
                "band_order": BAND_ORDER, "rms_window_samples": int(self.window),
                "latency_s": float(lag + self.filter_delay_s()), "mains": self.mains_note}

    def filter_delay_s(self) -> float:
        """Group delay of the filter cascade at the middle of the band (seconds): the slope of its
        phase there, from the sections themselves (their product as one transfer function, 30th
        order, is too ill-conditioned to differentiate)."""
        if self.sos is None:
            return 0.0
        low, high = self.band_applied_hz or (20.0, min(250.0, 0.4 * self.rate_hz))
        centre = math.sqrt(low * high)
        freqs = np.array([centre - 0.25, centre + 0.25])
        _, response = signal.sosfreqz(self.sos, worN=freqs, fs=self.rate_hz)
        phase = np.unwrap(np.angle(response))
        delay_s = -(phase[1] - phase[0]) / (2.0 * np.pi * (freqs[1] - freqs[0]))
        return float(max(delay_s, 0.0))

    def frame_sample(self, frames: np.ndarray) -> np.ndarray:
        """The last sample index each frame's envelope reads: ``floor(k * rate_hz / fps)``."""
        return np.floor(np.asarray(frames, dtype=np.float64) * self._ratio + 1e-9).astype(np.int64)

    def feed(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Process the next samples ``block`` (channels, n); returns ``(frames, envelopes)``: the
        indices of the frames this chunk completed and their envelopes (frames, channels)."""
        block = np.asarray(block, dtype=np.float64)
        if block.ndim != 2 or block.shape[0] != self.n_channels:
            raise InputError(f"{self.source}: expected {self.n_channels} channels of samples, got an array "
                             f"of shape {block.shape}")
        n = block.shape[1]
        if n == 0:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.n_channels))
        block = self._finite(block)
        y = self._filter(block)
        if self.lowpass is None:
            level = y * y
        else:
            if self._lowpass_zi is None:
                self._lowpass_zi = np.zeros((self.lowpass.shape[0], self.n_channels, 2))
            level, self._lowpass_zi = signal.sosfilt(self.lowpass, np.abs(y), axis=-1, zi=self._lowpass_zi)
        first = self.samples_seen
        stop = first + n  # samples [first, stop) are now known
        last_frame = int(math.floor((stop - 1) / self._ratio + 1e-9)) + 1
        while last_frame > 0 and self.frame_sample([last_frame - 1])[0] >= stop:
            last_frame -= 1
        while self.frame_sample([last_frame])[0] < stop:
            last_frame += 1
        frames = np.arange(self.next_frame, last_frame, dtype=np.int64)
        joined = np.concatenate([self._tail, level], axis=-1)
        offset = first - self._tail.shape[1]  # sample index of joined[:, 0]
        values = self._envelopes(joined, self.frame_sample(frames) - offset) if frames.size else \
            np.zeros((0, self.n_channels))
        keep = self.window - 1 if self.lowpass is None else 0
        self._tail = joined[:, joined.shape[1] - min(keep, joined.shape[1]):].copy() if keep else joined[:, :0]
        self.samples_seen = stop
        self.next_frame = last_frame
        return frames, values

    def _finite(self, block: np.ndarray) -> np.ndarray:
        bad = ~np.isfinite(block)
        if not bad.any():
            self._last_finite = block[:, -1].copy()
            return block
        if self.settings.nan_policy == "raise":
            check_finite(block, [f"channel {i + 1}" for i in range(self.n_channels)], self.rate_hz, self.source,
                         offset_samples=self.samples_seen)
        block = block.copy()
        last = self._last_finite if self._last_finite is not None else np.zeros(self.n_channels)
        for row in np.flatnonzero(bad.any(axis=1)):  # rows, not samples
            values = block[row]
            good = ~bad[row]
            index = np.where(good, np.arange(values.size), -1)
            np.maximum.accumulate(index, out=index)
            values[:] = np.where(index >= 0, values[np.maximum(index, 0)], last[row])
        self._last_finite = block[:, -1].copy()
        return block

    def _filter(self, block: np.ndarray) -> np.ndarray:
        if self.sos is None:
            return block
        if self._zi is None:
            steady = signal.sosfilt_zi(self.sos)  # (sections, 2) for a unit step
            self._zi = steady[:, None, :] * block[None, :, 0, None]
        y, self._zi = signal.sosfilt(self.sos, block, axis=-1, zi=self._zi)
        return y

    def _envelopes(self, level: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Envelope frames from ``level`` (squared or smoothed samples) at the local sample ``ends``."""
        if self.lowpass is not None:
            return level[:, ends].T * RECTIFY_TO_RMS
        out = np.empty((ends.size, self.n_channels))
        starts = np.maximum(ends - self.window + 1, 0)
        counts = ends - starts + 1
        full = np.flatnonzero(counts == self.window)
        per = max(1, MAX_GATHER // (self.window * self.n_channels))
        span = np.arange(-self.window + 1, 1)
        for a in range(0, full.size, per):
            rows = full[a:a + per]
            idx = ends[rows, None] + span[None, :]
            sums = np.add.reduce(np.ascontiguousarray(level[:, idx]), axis=-1)  # (channels, frames)
            out[rows] = np.sqrt(np.maximum(sums, 0.0) / self.window).T
        for row in np.flatnonzero(counts < self.window):  # a stream's first frames: less than a window so far
            s, e = starts[row], ends[row]
            total = np.add.reduce(np.ascontiguousarray(level[:, s:e + 1]), axis=-1)
            out[row] = np.sqrt(np.maximum(total, 0.0) / counts[row])
        return out


def causal_frames(source: RecordingSource, selection, fps: float, settings: ProcessingSettings,
                  fundamentals_hz=None, n_frames: int | None = None, block_s: float = 1.0) -> tuple[np.ndarray, dict]:
    """The first ``n_frames`` envelope frames (all by default) of one :class:`CausalChain` fed the
    recording's derived channels in blocks of ``block_s`` seconds (any block size gives the same
    envelopes), reading no further than they need; and what the chain applied."""
    name = source.source or "recording"
    chain = CausalChain(source.rate_hz, len(selection.names), fps, settings, fundamentals_hz=fundamentals_hz,
                        source=name)
    step = max(1, int(round(block_s * source.rate_hz)))
    parts = []
    for a in range(0, source.n_samples, step):
        if n_frames is not None and chain.next_frame >= n_frames:
            break
        block = selection.derive(source.read(a, min(source.n_samples, a + step)))
        parts.append(chain.feed(block)[1])
    values = np.concatenate(parts) if parts else np.zeros((0, len(selection.names)))
    if not values.shape[0]:
        raise InputError(f"{name}: no samples to process")
    if n_frames is not None:
        if values.shape[0] < n_frames:
            raise InputError(f"{name}: {n_frames} frames at {fps:g} fps run past the end of the recording "
                             f"({values.shape[0]} frames fit)")
        values = values[:n_frames]
    return values, chain.info()


def causal_envelopes(recording: Recording | RecordingSource, fps: float,
                     settings: ProcessingSettings | None = None, *, block_s: float = 1.0,
                     fundamentals_hz=None) -> MuscleTrack:
    """The causal chain over a whole recording: what a live stream of it gives, frame for frame.

    Channels are selected and mapped to sites as for :func:`.engine.process_recording`, which runs
    the same chain (:func:`causal_frames`) for ``settings.causal``, with its checks, frame range and
    normalisation.

    Returns
    -------
    MuscleTrack
        ``values[frames, channels]`` in µV at ``k / fps`` for every frame whose last sample lies in
        the recording; ``meta["processing"]`` holds the settings and what the chain applied
        (``"causal": True``, ``"latency_s"``).
    """
    settings = settings or causal_settings()
    if settings.normalise != "none":
        raise InputError("the causal chain gives envelopes in µV; live normalisation comes from a "
                         "calibration period (core.live.LiveSettings), so use normalise='none'")
    source = recording if isinstance(recording, RecordingSource) else RecordingSource.from_recording(recording)
    selection = select_channels(source, settings)
    values, info = causal_frames(source, selection, fps, settings, fundamentals_hz, block_s=block_s)
    meta = {"source": source.source,
            "processing": {**settings.to_dict(), **info, "rate_hz": float(source.rate_hz), "fps": float(fps)},
            "channel_sources": selection.sources, "channel_map": selection.report,
            "normalisation": {"method": "none"}}
    return MuscleTrack(values, selection.names, float(fps), resolve_space(selection.names), "uV", 0.0, meta)
