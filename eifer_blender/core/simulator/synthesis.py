"""sEMG synthesis of the simulator: subjects, crosstalk, carriers, artefacts.

Signal model, for Fridlund channel ``c`` (bipolar, µV)::

    x_c(t) = Σ_k W[c, k] · g_k · a_k(t + lead) · n_k(t)          muscle units k, with crosstalk
           + noise_c(t) + hum_c(t) + wander_c(t) + motion_c(t)

* ``n_k``: the unit's carrier, unit-variance Gaussian noise with a Shwedyk spectrum
  ``S(f) ∝ f² / ((f² + fl²)(f² + fh²)²)`` (fl = 60 Hz, fh = 120 Hz, peak ≈65 Hz), both corners
  scaled per muscle so the peak lands on :attr:`MuscleUnit.peak_hz` (corrugator ≈31 Hz).
  Made by FFT filtering white noise (overlap-save), so memory stays bounded for long sessions.
* ``g_k · a_k``: RMS amplitude = activation × the subject's per-unit gain (µV at full
  activation). sEMG leads the movement by the subject's ``emg_lead_s`` (electromechanical delay).
* ``W[c, k]`` (:func:`crosstalk_matrix`), the documented decay law:
  ``W = exp(-max(0, sqrt(d² + depth²) - extent) / λ)`` with ``d`` the distance in the face plane
  from the (displaced) electrode to the unit's centre, ``depth`` and ``extent`` per unit
  (:class:`~eifer_blender.core.simulator.physiology.MuscleUnit`) and ``λ`` the subject's crosstalk spread
  (6-10 mm). Neighbouring Fridlund sites 13-20 mm apart get 0.05-0.4, sites 30 mm away ≈0.02.
* ``noise``: white amplifier noise; ``hum``: mains (50/60 Hz) with 2nd, 3rd and 5th harmonics;
  ``wander``: slow baseline drift (Ornstein-Uhlenbeck, τ = 2 s); ``motion``: occasional
  electrode-movement transients that hit the channels near a random point of the face.

A *subject* (:class:`SubjectParams`, :func:`make_subject`) is a seeded parameter set. The true,
noise-free RMS level of every channel is :func:`true_envelope`. Sessions and their files are in
:mod:`.session`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import scipy.fft
from scipy.signal import lfilter

from ..errors import InputError
from ..recording import Recording
from ..recording.montage import FRIDLUND22, fridlund_sites_mm
from ..tracks import MuscleTrack, Track
from . import physiology
from .physiology import MUSCLES_SPACE, UNIT_NAMES, unit_positions_mm, unit_table

MONTAGES = ("fridlund22",)
DEFAULT_RATE_HZ = 4096.0
MIN_RATE_HZ = 1000.0  # SENIAM: ≥1 kHz for sEMG; the carriers reach ~500 Hz
SHWEDYK_LOW_HZ, SHWEDYK_HIGH_HZ = 60.0, 120.0
_A, _B = SHWEDYK_LOW_HZ ** 2, SHWEDYK_HIGH_HZ ** 2
SHWEDYK_PEAK_HZ = float(np.sqrt((-_A + np.sqrt(_A * _A + 8 * _A * _B)) / 4))  # ≈65.3 Hz
HUM_HARMONICS = (1, 2, 3, 5)
CARRIER_FILTER_S = 0.25  # FIR length of the carrier filters
_FFT_LENGTH = 1 << 17  # overlap-save block
_MOTION_SPAN = 12  # a motion transient lasts this many time constants (then < 0.03 % of its peak)


# ---------------------------------------------------------------------------------------------
# Subjects


@dataclass
class SubjectParams:
    """One simulated person with electrodes on: everything that differs between subjects.

    Arrays are per muscle unit (``physiology.UNIT_NAMES`` order) or per channel (``FRIDLUND22``).
    """

    subject_id: int
    gains_uv: np.ndarray  # (units,) RMS at full activation on an electrode over the unit
    peak_hz: np.ndarray  # (units,) carrier spectrum peak
    crosstalk_mm: float  # λ of the crosstalk decay law
    electrode_offsets_mm: np.ndarray  # (channels, 2) electrode displacement from the standard site
    noise_uv: np.ndarray  # (channels,) amplifier noise RMS
    hum_uv: np.ndarray  # (channels,) mains hum amplitude of the fundamental
    mains_hz: float
    hum_harmonics: np.ndarray  # (len(HUM_HARMONICS),) relative amplitudes
    hum_phases: np.ndarray  # (len(HUM_HARMONICS),) radians
    wander_uv: np.ndarray  # (channels,) baseline wander RMS
    artefacts_per_min: float  # mean rate of motion artefacts
    artefact_uv: float  # typical motion artefact peak
    tonic: np.ndarray  # (units,) rest activation
    blink_rate_per_min: float
    emg_lead_s: float  # sEMG precedes the movement by this much

    def clean(self) -> "SubjectParams":
        """The same subject with an ideal amplifier: no noise, hum, wander or motion artefacts."""
        zeros = np.zeros(len(FRIDLUND22))
        return replace(self, noise_uv=zeros, hum_uv=zeros.copy(), wander_uv=zeros.copy(),
                       artefacts_per_min=0.0)

    def to_dict(self) -> dict:
        """JSON-ready parameters (arrays as lists)."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "SubjectParams":
        """Inverse of :meth:`to_dict`."""
        scalars = {"subject_id", "crosstalk_mm", "mains_hz", "artefacts_per_min", "artefact_uv",
                   "blink_rate_per_min", "emg_lead_s"}
        return cls(**{k: (v if k in scalars else np.asarray(v, dtype=np.float64)) for k, v in values.items()})


def make_subject(subject_id: int, mains_hz: float = 50.0) -> SubjectParams:
    """The parameters of subject ``subject_id`` (any integer ≥ 0; the same id gives the same subject).

    Gains vary log-normally (σ 0.3 between people, 0.1 between sides), spectral peaks ±10 %,
    crosstalk spread 6-10 mm, electrodes sit up to ~4 mm off the standard site, amplifier noise
    0.5-2 µV, hum 1-10 µV, wander 2-10 µV RMS, 0.3-1.5 motion artefacts a minute, 10-25 blinks a minute.
    """
    if isinstance(subject_id, bool) or not isinstance(subject_id, (int, np.integer)) or subject_id < 0:
        raise InputError(f"subject must be a whole number ≥ 0, got {subject_id!r}")
    if mains_hz not in (50.0, 60.0):
        raise InputError(f"mains frequency must be 50 or 60 Hz, got {mains_hz}")
    rng = np.random.default_rng([0x5EB1EC7, int(subject_id)])
    n_muscles, n_units, n_channels = len(physiology.MUSCLE_UNITS), len(UNIT_NAMES), len(FRIDLUND22)
    person = np.repeat(rng.lognormal(0.0, 0.3, n_muscles), 2)
    sides = rng.lognormal(0.0, 0.1, n_units)
    offsets = rng.normal(0.0, 1.5, (n_channels, 2))
    offsets *= np.minimum(1.0, 4.0 / np.maximum(np.linalg.norm(offsets, axis=1, keepdims=True), 1e-9))
    return SubjectParams(
        subject_id=int(subject_id),
        gains_uv=unit_table("gain_uv") * person * sides,
        peak_hz=unit_table("peak_hz") * np.repeat(rng.uniform(0.9, 1.1, n_muscles), 2),
        crosstalk_mm=float(rng.uniform(6.0, 10.0)),
        electrode_offsets_mm=offsets,
        noise_uv=rng.uniform(0.5, 2.0, n_channels),
        hum_uv=rng.lognormal(np.log(3.0), 0.6, n_channels).clip(1.0, 10.0),
        mains_hz=float(mains_hz),
        hum_harmonics=np.array([1.0, rng.uniform(0.05, 0.2), rng.uniform(0.2, 0.5), rng.uniform(0.05, 0.2)]),
        hum_phases=rng.uniform(0.0, 2 * np.pi, len(HUM_HARMONICS)),
        wander_uv=rng.uniform(2.0, 10.0, n_channels),
        artefacts_per_min=float(rng.uniform(0.3, 1.5)),
        artefact_uv=float(rng.uniform(50.0, 200.0)),
        tonic=np.repeat(rng.uniform(0.005, 0.02, n_muscles), 2) * rng.uniform(0.8, 1.2, n_units),
        blink_rate_per_min=float(rng.uniform(10.0, 25.0)),
        emg_lead_s=float(rng.uniform(0.02, 0.05)),
    )


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a whole number ≥ 0, got {seed!r}")
    return int(seed)


def resolve_subject(subject) -> SubjectParams:
    return subject if isinstance(subject, SubjectParams) else make_subject(subject)


# ---------------------------------------------------------------------------------------------
# Crosstalk and carriers


def crosstalk_weights(distance_mm: np.ndarray, depth_mm, extent_mm, spread_mm: float) -> np.ndarray:
    """The decay law: ``exp(-max(0, sqrt(d² + depth²) - extent) / spread)``, 1 over the muscle."""
    reach = np.sqrt(np.square(distance_mm) + np.square(depth_mm)) - extent_mm
    return np.exp(-np.maximum(reach, 0.0) / spread_mm)


def crosstalk_matrix(subject: SubjectParams) -> np.ndarray:
    """Weights (channels, units) with which each Fridlund channel picks up each muscle unit."""
    electrodes = fridlund_sites_mm() + subject.electrode_offsets_mm
    units = unit_positions_mm()
    distance = np.linalg.norm(electrodes[:, None, :] - units[None, :, :], axis=-1)
    return crosstalk_weights(distance, unit_table("depth_mm")[None, :], unit_table("extent_mm")[None, :],
                             subject.crosstalk_mm)


def mixing_matrix_uv(subject: SubjectParams) -> np.ndarray:
    """µV (channels, units) each channel shows per unit at full activation: crosstalk × gain."""
    return crosstalk_matrix(subject) * subject.gains_uv[None, :]


def shwedyk_psd(freqs_hz: np.ndarray, low_hz: float = SHWEDYK_LOW_HZ,
                high_hz: float = SHWEDYK_HIGH_HZ) -> np.ndarray:
    """Shwedyk sEMG power spectrum ``fh⁴·f² / ((f² + fl²)(f² + fh²)²)`` (k = 1)."""
    f2 = np.square(np.asarray(freqs_hz, dtype=np.float64))
    return high_hz ** 4 * f2 / ((f2 + low_hz ** 2) * np.square(f2 + high_hz ** 2))


def carrier_psd(freqs_hz: np.ndarray, peak_hz: float) -> np.ndarray:
    """Shwedyk spectrum with both corners scaled so that its peak sits at ``peak_hz``."""
    scale = peak_hz / SHWEDYK_PEAK_HZ
    return shwedyk_psd(freqs_hz, SHWEDYK_LOW_HZ * scale, SHWEDYK_HIGH_HZ * scale)


def carrier_filters(peak_hz: np.ndarray, rate_hz: float) -> np.ndarray:
    """Zero-phase FIR filters (units, taps) with unit energy: white noise in, carrier out."""
    n_taps = 2 * int(round(CARRIER_FILTER_S * rate_hz / 2)) + 1
    freqs = np.fft.rfftfreq(n_taps, 1.0 / rate_hz)
    magnitude = np.sqrt(np.stack([carrier_psd(freqs, p) for p in peak_hz]))
    taps = np.roll(np.fft.irfft(magnitude, n_taps, axis=-1), n_taps // 2, axis=-1) * np.hanning(n_taps)
    return taps / np.linalg.norm(taps, axis=-1, keepdims=True)


def band_power_fraction(peak_hz: np.ndarray, rate_hz: float, band_hz: tuple[float, float]) -> np.ndarray:
    """Share (units,) of each carrier's power inside ``band_hz`` (for band-limited envelopes)."""
    taps = carrier_filters(peak_hz, rate_hz)
    n_fft = 1 << 16
    power = np.square(np.abs(np.fft.rfft(taps, n_fft, axis=-1)))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate_hz)
    inside = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    return power[:, inside].sum(axis=-1) / power.sum(axis=-1)


# ---------------------------------------------------------------------------------------------
# Synthesis


def _frame_interpolator(n_frames: int, fps: float, shift_s: float):
    """Linear interpolation of (rows, frames) arrays at arbitrary times, edges held."""

    def at(values: np.ndarray, times_s: np.ndarray) -> np.ndarray:
        position = (times_s + shift_s) * fps
        first = np.clip(np.floor(position).astype(np.int64), 0, max(n_frames - 2, 0))
        frac = np.clip(position - first, 0.0, 1.0).astype(np.float32)
        low = values[:, first]
        if n_frames < 2:
            return low
        step = values[:, first + 1]
        step -= low  # in place: these gathers are fresh arrays, and this runs on every sample
        step *= frac[None, :]
        low += step
        return low

    return at


def _check_activations(activations: Track) -> None:
    if not isinstance(activations, Track):
        raise InputError("activations must be a MuscleTrack (frames × muscle units)")
    if tuple(activations.names) != UNIT_NAMES:
        raise InputError(f"activation track must have the {len(UNIT_NAMES)} simulator muscle units "
                         f"(physiology.UNIT_NAMES) in order, got {len(activations.names)} columns")
    values = activations.values
    if values.size and not (np.isfinite(values).all() and values.min() >= 0.0 and values.max() <= 1.0 + 1e-6):
        raise InputError("muscle activations must be finite and lie in [0, 1] "
                         f"(got {np.nanmin(values):.3g} .. {np.nanmax(values):.3g})")


def activation_track(values: np.ndarray, fps: float, start_s: float = 0.0) -> MuscleTrack:
    """Wrap activations (frames, len(UNIT_NAMES)) in [0, 1] as the simulator's MuscleTrack."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2 or values.shape[1] != len(UNIT_NAMES):
        raise InputError(f"activations must be (frames, {len(UNIT_NAMES)}), got shape {values.shape}")
    return MuscleTrack(values, UNIT_NAMES, fps, MUSCLES_SPACE, "1", start_s)


def _motion_events(duration_s: float, subject: SubjectParams, rng: np.random.Generator):
    """(onset_s, tau_s, per-channel peak µV) of each motion artefact."""
    count = rng.poisson(subject.artefacts_per_min * duration_s / 60.0)
    sites = fridlund_sites_mm() + subject.electrode_offsets_mm
    events = []
    for onset in np.sort(rng.uniform(0.0, duration_s, count)):
        centre = sites[rng.integers(len(sites))] + rng.normal(0.0, 10.0, 2)
        reach = np.exp(-np.linalg.norm(sites - centre, axis=1) / 25.0)
        peak = subject.artefact_uv * rng.lognormal(0.0, 0.5) * rng.choice((-1.0, 1.0))
        per_channel = peak * reach * (1.0 + 0.3 * rng.standard_normal(len(sites)))
        events.append((float(onset), float(rng.uniform(0.03, 0.12)), per_channel.astype(np.float32)))
    return events


def _white(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Unit-variance Gaussian white noise, float32 (the carriers' raw material)."""
    return rng.standard_normal(shape, dtype=np.float32)


def synthesize_emg(activations: MuscleTrack, subject=1, rate_hz: float = DEFAULT_RATE_HZ,
                   seed: int = 0, annotations=()) -> Recording:
    """Fridlund-22 bipolar sEMG (µV, float32) for muscle activations.

    Parameters
    ----------
    activations : MuscleTrack over ``physiology.UNIT_NAMES`` (see :func:`activation_track`).
    subject : subject id or :class:`SubjectParams`.
    rate_hz : sampling rate, ≥ 1000 Hz.
    seed : random seed; same inputs and seed give identical samples.
    annotations : events to attach to the recording (e.g. the protocol's).

    Returns
    -------
    Recording with channel names ``FRIDLUND22``; ``meta["motion_artefacts"]`` lists the
    artefacts' ``[onset_s, duration_s]``.
    """
    _check_activations(activations)
    seed = check_seed(seed)
    subject = resolve_subject(subject)
    if not rate_hz >= MIN_RATE_HZ:
        raise InputError(f"sampling rate must be at least {MIN_RATE_HZ:.0f} Hz, got {rate_hz}")
    rate_hz = float(rate_hz)
    n_samples = int(round(activations.n_frames / activations.fps * rate_hz))
    n_units, n_channels = len(UNIT_NAMES), len(FRIDLUND22)
    carrier_rng, noise_rng, event_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(
        [seed, subject.subject_id, 0xE316]).spawn(3))

    taps = carrier_filters(subject.peak_hz, rate_hz)
    overlap = taps.shape[1] - 1
    n_fft = min(_FFT_LENGTH, scipy.fft.next_fast_len(n_samples + overlap, real=True))
    n_fft = max(n_fft, scipy.fft.next_fast_len(2 * overlap + 1, real=True))
    block = n_fft - overlap
    spectra = scipy.fft.rfft(taps.astype(np.float32), n_fft, axis=-1)
    mixing = mixing_matrix_uv(subject).astype(np.float32)
    values = np.ascontiguousarray(activations.values.T, dtype=np.float32)
    amplitude_at = _frame_interpolator(activations.n_frames, activations.fps,
                                       subject.emg_lead_s - activations.start_s)

    duration_s = n_samples / rate_hz
    wander_rate_hz = 4.0  # wander control points; the drift itself stays below ~0.5 Hz
    n_wander = int(np.ceil(duration_s * wander_rate_hz)) + 2
    rho = np.exp(-1.0 / (wander_rate_hz * 2.0))
    burn_in = 64
    drift = lfilter([np.sqrt(1 - rho * rho)], [1.0, -rho],
                    event_rng.standard_normal((n_channels, n_wander + burn_in)), axis=1)[:, burn_in:]
    drift = (drift * subject.wander_uv[:, None]).astype(np.float32)
    wander_at = _frame_interpolator(n_wander, wander_rate_hz, 0.0)
    motions = _motion_events(duration_s, subject, event_rng)
    hum_uv = subject.hum_uv.astype(np.float32)[:, None]
    noise_uv = subject.noise_uv.astype(np.float32)[:, None]

    out = np.empty((n_channels, n_samples), dtype=np.float32)
    white = np.zeros((n_units, n_fft), dtype=np.float32)  # [history | new samples | zero pad]
    white[:, :overlap] = _white(carrier_rng, (n_units, overlap))
    for start in range(0, n_samples, block):
        stop = min(start + block, n_samples)
        length = stop - start
        white[:, overlap:overlap + length] = _white(carrier_rng, (n_units, length))
        if length < block:
            white[:, overlap + length:] = 0.0
        spectrum = scipy.fft.rfft(white, axis=-1)
        spectrum *= spectra
        carriers = scipy.fft.irfft(spectrum, n_fft, axis=-1)[:, overlap:overlap + length]
        white[:, :overlap] = white[:, length:length + overlap]  # the newest samples lead the next block
        times_s = np.arange(start, stop) / rate_hz
        carriers *= amplitude_at(values, times_s)
        chunk = mixing @ carriers
        chunk += noise_uv * noise_rng.standard_normal((n_channels, stop - start), dtype=np.float32)
        phase = 2.0 * np.pi * subject.mains_hz * times_s
        hum = sum(r * np.sin(h * phase + p) for h, r, p in
                  zip(HUM_HARMONICS, subject.hum_harmonics, subject.hum_phases))
        chunk += hum_uv * hum.astype(np.float32)[None, :]
        chunk += wander_at(drift, times_s)
        for onset_s, tau_s, peak_uv in motions:
            first = max(start, int(onset_s * rate_hz))
            last = min(stop, int((onset_s + _MOTION_SPAN * tau_s) * rate_hz) + 1)
            if first < last:
                lag = (np.arange(first, last) / rate_hz - onset_s) / tau_s
                pulse = (np.clip(lag, 0.0, None) * np.exp(1.0 - lag)).astype(np.float32)
                chunk[:, first - start:last - start] += peak_uv[:, None] * pulse[None, :]
        out[:, start:stop] = chunk

    meta = {
        "simulated": True, "montage": "fridlund22", "reference": "bipolar", "units": "uV",
        "subject_id": subject.subject_id, "seed": seed, "mains_hz": subject.mains_hz,
        "generator": "eifer_blender.core.simulator.synthesis",
        "motion_artefacts": [[round(o, 4), round(min(_MOTION_SPAN * t, duration_s - o), 4)]
                             for o, t, _ in motions],
    }
    return Recording(out, rate_hz, list(FRIDLUND22), ["emg"] * n_channels, list(annotations),
                     source=f"simulated: subject {subject.subject_id}, seed {seed}", meta=meta)


def true_envelope(activations: MuscleTrack, subject=1, band_hz: tuple[float, float] | None = None,
                  rate_hz: float = DEFAULT_RATE_HZ) -> Track:
    """Noise-free RMS (µV) each Fridlund channel shows, per frame of ``activations``.

    ``sqrt(Σ_k (W[c,k]·g_k·a_k(t + lead))²)``: the level the muscles put on each channel through
    gains and crosstalk, without noise, hum, wander or artefacts. With ``band_hz`` only the
    carrier power inside that band counts (compare with a band-passed envelope).
    """
    _check_activations(activations)
    subject = resolve_subject(subject)
    power = np.square(mixing_matrix_uv(subject))
    if band_hz is not None:
        power = power * band_power_fraction(subject.peak_hz, rate_hz, band_hz)[None, :]
    at = _frame_interpolator(activations.n_frames, activations.fps,
                             subject.emg_lead_s - activations.start_s)
    shifted = at(np.asarray(activations.values.T, dtype=np.float64), activations.times_s)
    level = np.sqrt(power @ np.square(shifted)).T
    return Track(level.astype(np.float32), FRIDLUND22, activations.fps, "fridlund22", "uV",
                 activations.start_s, {"band_hz": list(band_hz) if band_hz else None})
