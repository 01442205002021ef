"""Live: an LSL stream of sEMG in, envelopes and expression weights for "now" out, with no bpy.

``LSL inlet → causal chain (stateful) → calibration → EMG2Exp → weights for "now"``. The same
:class:`LiveDriver` runs on a real stream (:meth:`LiveDriver.pull_and_step`) and on arrays
(:meth:`LiveDriver.step`); :func:`causal_drive` is the offline path over a whole recording, written
independently (one vectorised pass) and equal to the live one frame for frame.

Frames
    Envelope frame k lies at ``k / model.fps`` seconds after the stream's first sample (the model's
    frame rate: its windows count frames). A causal model gives weights for frame k once frame k
    is in; a centred one (window ``2h + 1``) waits for frame ``k + h``, ``h / fps`` seconds later
    (233 ms for the offline model's 15-frame window at 30 fps): :attr:`LiveDriver.model_wait_s`.
    Live drive defaults to :data:`LIVE_MODEL`, trained on this chain with a causal window: it
    waits for nothing, and sees the envelopes it was trained on (the 0.125 s trailing RMS).
Normalisation (calibration)
    The model's own input normalisation (``metadata.input_normalisation``; the channel-flexible
    models' ``{"method": "activity", ...}``: 0 at rest, 1 at the reference level) needs per-channel
    references. Live, they come from a calibration period at the start of the stream: the frames
    of its first ``LiveSettings.calibration_s`` seconds (default 10 s: rest, then the expressions
    the session will show, or the posed maxima for ``calibration="calibration"``), computed once,
    by the same code as offline (:func:`..envelopes.normalisation_references`), and fixed from then
    on. Fixed references make the face's response stable through a session, where a running
    percentile would drift with what the person does; the price is a calibration period during
    which the face stays at rest. Known references (``LiveSettings.references``, e.g. a previous
    session's) skip it.
Bad input
    No stream found within the time-out, a stream with an irregular or too low rate, another rate
    or channel count than expected, or labels that map to none of the model's sites: an
    :class:`InputError` before anything runs. A stream that stops: after ``stall_s`` without
    samples the driver reports ``"stalled"`` and holds its last weights; a closed outlet:
    ``"ended"``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np

from .envelopes import normalisation_references, normalise_envelopes
from .envelopes.engine import MIN_RAW_RATE_HZ
from .envelopes.selection import select_channels
from .envelopes.streaming import CausalChain, causal_fundamentals
from .errors import InputError, ModelMismatchError
from .network import Model
from .network.windows import make_windows, window_offsets
from .recording import Recording, RecordingSource
from .tracks import ExpressionTrack, MuscleTrack

PYLSL_HINT = ("live streams need the pylsl package (Lab Streaming Layer): pip install pylsl==1.18.6 "
              "(its wheels carry liblsl for Windows, macOS and Linux with glibc >= 2.35)")
LIVE_MODEL = "emg2arkit_causal"  # the shipped model for live drive: causal chain and window, no wait for the future
DEFAULT_TIMEOUT_S = 5.0
PULL_CHUNK = 4096  # samples per pull from the inlet
LINGER_S = 0.5  # a replay's outlet stays open this long after its last sample
HISTORY_STEPS = 10_000  # processing times kept for the latency readout


def import_pylsl():
    """``pylsl``, imported only when a live feature is used; a clear :class:`InputError` without it."""
    try:
        import pylsl
    except ImportError as exc:
        raise InputError(PYLSL_HINT) from exc
    except (OSError, RuntimeError) as exc:  # the package without its liblsl (the "any" wheel)
        raise InputError(f"pylsl is installed but cannot load liblsl ({exc}); {PYLSL_HINT}") from exc
    return pylsl


# ----------------------------------------------------------------------------------------- the stream
@dataclass(frozen=True)
class StreamHeader:
    """What an LSL stream says about itself: name, type, rate (Hz; 0 = irregular) and channel labels
    (``desc/channels/channel/label``; ``"ch1"``, ``"ch2"`` … where it gives none)."""

    name: str
    type: str
    rate_hz: float
    labels: tuple[str, ...]
    channel_format: str = "float32"
    source_id: str = ""
    hostname: str = ""
    labelled: bool = True  # False when the stream gave no labels and they were numbered

    @classmethod
    def from_info(cls, info) -> "StreamHeader":
        labels = []
        channel = info.desc().child("channels").child("channel")
        while not channel.empty():
            labels.append(channel.child_value("label"))
            channel = channel.next_sibling()
        count = info.channel_count()
        labelled = len(labels) == count and all(labels)
        if not labelled:
            labels = [f"ch{i + 1}" for i in range(count)]
        formats = {1: "float32", 2: "double64", 3: "string", 4: "int32", 5: "int16", 6: "int8", 7: "int64"}
        return cls(info.name(), info.type(), float(info.nominal_srate()), tuple(labels),
                   formats.get(info.channel_format(), str(info.channel_format())), info.source_id(),
                   info.hostname(), labelled)


def _describe(infos) -> str:
    return ", ".join(f"{i.name()!r} ({i.type()}, {i.channel_count()} ch, {i.nominal_srate():g} Hz)"
                     for i in infos) or "none"


def find_stream(name: str | None = None, stream_type: str | None = None,
                timeout_s: float = DEFAULT_TIMEOUT_S):
    """The ``pylsl.StreamInfo`` of the stream called ``name`` (or else the first of ``stream_type``,
    default "EMG"), waiting up to ``timeout_s``.

    Raises
    ------
    InputError
        No such stream within the time-out (the message lists the streams that were seen).
    """
    pylsl = import_pylsl()
    if name:
        found = pylsl.resolve_byprop("name", name, 1, timeout_s)
        what = f"named {name!r}"
    else:
        stream_type = stream_type or "EMG"
        found = pylsl.resolve_byprop("type", stream_type, 1, timeout_s)
        what = f"of type {stream_type!r}"
    if found:
        return found[0]
    seen = pylsl.resolve_streams(min(0.5, timeout_s))
    raise InputError(f"no LSL stream {what} found within {timeout_s:g} s (streams seen: {_describe(seen)}). "
                     f"Start the sender (the amplifier's LSL app, or `eifer stream --emg recording.edf` "
                     f"to replay a file) on this machine or the network, and check the name")


def open_inlet(name: str | None = None, stream_type: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
               max_buffer_s: int = 30):
    """An open ``pylsl.StreamInlet`` on the stream :func:`find_stream` finds, and its header."""
    pylsl = import_pylsl()
    info = find_stream(name, stream_type, timeout_s)
    inlet = pylsl.StreamInlet(info, max_buflen=max_buffer_s, recover=False)
    from pylsl.util import TimeoutError as LslTimeout

    try:
        full = inlet.info(timeout_s)
    except LslTimeout as exc:
        raise InputError(f"LSL stream {info.name()!r} was found but did not send its description within "
                         f"{timeout_s:g} s") from exc
    header = StreamHeader.from_info(full)
    if header.channel_format == "string":
        raise InputError(f"LSL stream {header.name!r} carries text (markers), not sEMG samples")
    inlet.open_stream(timeout_s)
    return inlet, header


# ----------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class LiveSettings:
    """How a stream drives a face.

    ``calibration_s``: seconds at the start of the stream whose envelopes give the normalisation
    references (ignored when ``references`` are given: ``{"method", "offset", "scale"}`` as in a
    track's ``meta["normalisation"]``, in the model's channel order of the covered sites).
    ``calibration``: for models with an "activity" input, what full activity is ("percentile":
    the period's 99th percentile, "calibration": the posed maxima in it, "rest": a multiple of
    rest; None: the model's own). ``sensitivity`` multiplies calibrated activity.
    ``notch_hz``: mains fundamentals (a stream has no spectrum yet: state 60 in the Americas).
    ``expected_rate_hz`` / ``expected_channels``: refuse a stream that differs.
    ``stall_s``: seconds without samples after which the driver says the stream stalled.
    ``channel_map``, ``side``, ``mirror``: how labels map to sites, as for recordings.
    """

    calibration_s: float = 10.0
    references: dict | None = None
    calibration: str | None = None
    sensitivity: float = 1.0
    notch_hz: tuple[float, ...] = (50.0,)
    expected_rate_hz: float | None = None
    expected_channels: int | None = None
    stall_s: float = 0.5
    channel_map: tuple[tuple[str, str], ...] | None = None
    side: str | None = None
    mirror: bool = False
    nan_policy: str = "zero"  # live: a missing sample holds the last one (refusing would stop the show)


@dataclass
class LiveStatus:
    """Where a live session stands: ``state`` is "calibrating", "live", "stalled" or "ended"."""

    state: str = "calibrating"
    message: str = ""
    samples: int = 0  # received so far
    frames: int = 0  # envelope frames made
    weight_frames: int = 0  # frames with weights
    processing_ms: float = 0.0  # the last step's processing time
    transport_ms: float = 0.0  # age of the newest sample when it was pulled (LSL timestamps)
    history_ms: list = field(default_factory=list, repr=False)  # processing time of the steps that made weights

    def latency_ms(self, model_wait_s: float = 0.0) -> float:
        """Sample in → weights out: transport + processing + the model's wait for its window."""
        return self.transport_ms + self.processing_ms + 1000.0 * model_wait_s


# ----------------------------------------------------------------------------------------- the driver
class LiveDriver:
    """The live step: samples in, envelopes and weights for "now" out.

    Parameters
    ----------
    model : Model
        An EMG2Exp model whose alignment is "causal" or "centred" (see the module's notes).
    labels : sequence of str
        The stream's channel labels (mapped to sites as a recording's names are).
    rate_hz : float
        The stream's sampling rate.
    settings : LiveSettings
    processing : ProcessingSettings, optional
        The chain (default: the model's own, made causal: :meth:`chain_settings`).
    source : str
        The stream's name, for messages.
    clock : callable
        Seconds, monotonic (tests pass their own to make stalls without waiting).
    """

    def __init__(self, model: Model, labels: Sequence[str], rate_hz: float,
                 settings: LiveSettings = LiveSettings(), *, processing=None, source: str = "stream",
                 clock: Callable[[], float] = time.monotonic):
        model.require(direction="emg2exp", purpose="driving a face live")
        self.model, self.settings, self.source, self.clock = model, settings, source, clock
        self.labels = tuple(labels)
        self.rate_hz = float(rate_hz)
        check_stream(self.labels, self.rate_hz, settings, source)
        self.processing = processing or chain_settings(model, settings)
        self.present = covered_sites(model, self.labels, self.rate_hz, self.processing, source)
        self.selection = select_channels(_header_source(self.labels, self.rate_hz, source),
                                         replace(self.processing, channels=self.present))
        self.chain = CausalChain(self.rate_hz, len(self.present), model.fps, self.processing,
                                 fundamentals_hz=causal_fundamentals(self.processing)[0], source=source)
        self.offsets = window_offsets(model.window, model.alignment)
        self.after = int(self.offsets[-1])  # frames the model looks ahead (0 when causal)
        self.before = -int(self.offsets[0])
        self.mask = np.array([n in self.present for n in model.input_names], dtype=np.float32)
        self.columns = np.flatnonzero(self.mask > 0)
        names = model.driven_outputs(self.present) if model.masked else model.output_names
        self.output_names = tuple(names)
        self.output_columns = np.array([model.output_names.index(n) for n in names], dtype=np.int64)
        self.clip = (0.0, 1.0) if model.metadata.output_space == "arkit52" else None
        self.spec = normalisation_spec(model, settings)
        self.references = dict(settings.references) if settings.references else None
        if self.references is None and self.spec["method"] != "none":
            self.calibration_frames = max(1, int(math.ceil(settings.calibration_s * model.fps - 1e-9)))
        else:
            self.calibration_frames = 0
            if self.references is None:
                self.references = {"method": "none"}
        self.first_output = max(0, self.calibration_frames - 1 - self.after)
        self._raw: list[np.ndarray] = []  # envelope frames kept until calibrated
        self._inputs = np.zeros((0, len(model.input_names)))  # normalised model input frames kept
        self._inputs_start = 0  # frame index of _inputs[0]
        self.next_output = self.first_output
        self.envelopes_now: np.ndarray | None = None
        self.weights_now: np.ndarray | None = None
        self.last_frames = np.zeros(0, dtype=np.int64)  # the frames (indices) the last step gave weights for
        self.last_weights = np.zeros((0, len(self.output_names)))
        self.status = LiveStatus(state="calibrating" if self.calibration_frames else "live",
                                 message=self._calibration_message())
        self.inlet = None
        self.header: StreamHeader | None = None
        self._last_sample_clock = clock()
        self._buffer = None

    # ------------------------------------------------------------------ construction from a stream
    @classmethod
    def connect(cls, model: Model, name: str | None = None, stream_type: str | None = None,
                settings: LiveSettings = LiveSettings(), *, timeout_s: float = DEFAULT_TIMEOUT_S,
                **kwargs) -> "LiveDriver":
        """A driver on the LSL stream ``name`` (or the first of ``stream_type``), its inlet open."""
        inlet, header = open_inlet(name, stream_type, timeout_s)
        try:
            if not header.labelled and settings.channel_map is None:
                raise InputError(f"LSL stream {header.name!r} gives no channel labels: say which channel "
                                 f"records which site (channel_map, e.g. ch1=Zyg_L) or label the channels "
                                 f"in the sender")
            driver = cls(model, header.labels, header.rate_hz, settings, source=f"LSL stream {header.name!r}",
                         **kwargs)
        except Exception:
            inlet.close_stream()
            raise
        driver.inlet = inlet
        driver.header = header
        return driver

    def close(self) -> None:
        """Close the inlet (the driver keeps its last weights)."""
        if self.inlet is not None:
            try:
                self.inlet.close_stream()
            except Exception:  # an inlet whose stream is gone closes with an error: nothing to keep
                pass
            self.inlet = None

    # ------------------------------------------------------------------ properties
    @property
    def model_wait_s(self) -> float:
        """How long a centred model waits for the future half of its window (0 when causal)."""
        return self.after / self.model.fps

    @property
    def window_lag_s(self) -> float:
        """The causal chain's own lag (trailing RMS window's group delay plus the filters')."""
        return float(self.chain.info()["latency_s"])

    @property
    def calibrated(self) -> bool:
        return self.references is not None

    def frame_times_s(self, frames) -> np.ndarray:
        """Stream seconds (from the first sample) of frame indices."""
        return np.asarray(frames, dtype=np.float64) / self.model.fps

    # ------------------------------------------------------------------ the step
    def step(self, samples: np.ndarray, timestamps=None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Feed new samples (n, channels) as LSL gives them; returns ``(envelopes_now, weights_now)``.

        ``envelopes_now`` (covered sites, µV) is the newest envelope frame, ``weights_now`` (one per
        :attr:`output_names`) the newest weights; both hold their last values when the samples
        complete no frame (None before the first). Every frame given weights in this step is in
        :attr:`last_frames` / :attr:`last_weights`; :attr:`status` says where the session stands.
        """
        started = time.perf_counter()
        samples = np.asarray(samples, dtype=np.float64)
        if samples.ndim != 2 or samples.shape[1] != len(self.labels):
            raise InputError(f"{self.source}: samples must be (n, {len(self.labels)} channels), got an "
                             f"array of shape {samples.shape}")
        n = samples.shape[0]
        self.last_frames = np.zeros(0, dtype=np.int64)
        self.last_weights = np.zeros((0, len(self.output_names)))
        if n == 0:
            self._check_stall()
            return self.envelopes_now, self.weights_now
        self._last_sample_clock = self.clock()
        if self.status.state == "stalled":
            self.status.state, self.status.message = ("live" if self.calibrated else "calibrating"), "stream resumed"
        self.status.samples += n
        frames, envelopes = self.chain.feed(self.selection.derive(samples.T))
        if frames.size:
            self.envelopes_now = envelopes[-1].copy()
            self.status.frames = int(frames[-1]) + 1
            self._add_frames(envelopes)
            ready_last = self.status.frames - 1 - self.after
            if self.calibrated and ready_last >= self.next_output:
                outputs = np.arange(self.next_output, ready_last + 1)
                self.last_weights = self._infer(outputs)
                self.last_frames = outputs
                self.weights_now = self.last_weights[-1].copy()
                self.next_output = ready_last + 1
                self.status.weight_frames += outputs.size
                self._trim()
        elapsed_ms = 1000.0 * (time.perf_counter() - started)
        self.status.processing_ms = elapsed_ms
        if self.last_frames.size:
            self.status.history_ms.append(elapsed_ms)
            del self.status.history_ms[:-HISTORY_STEPS]
        if timestamps is not None and len(timestamps):
            self.status.transport_ms = max(0.0, 1000.0 * (_lsl_now() - float(np.asarray(timestamps)[-1])))
        return self.envelopes_now, self.weights_now

    def pull_and_step(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Pull every sample waiting in the inlet (no waiting) and :meth:`step` them; a stream that
        sends nothing for ``stall_s`` is reported stalled, a closed one ended, and the weights hold."""
        if self.inlet is None:
            raise InputError("the live driver has no open stream (LiveDriver.connect opens one)")
        import_pylsl()
        from pylsl.util import LostError

        if self._buffer is None:
            dtype = np.float64 if self.header.channel_format == "double64" else np.float32
            if self.header.channel_format not in ("double64", "float32"):
                dtype = {"int32": np.int32, "int16": np.int16, "int8": np.int8, "int64": np.int64}[
                    self.header.channel_format]
            self._buffer = np.empty((PULL_CHUNK, len(self.labels)), dtype=dtype)
        pieces, stamps = [], []
        while True:
            try:
                view, ts = self.inlet.pull_chunk(timeout=0.0, max_samples=PULL_CHUNK, dest_obj=self._buffer,
                                                 as_numpy=True)
            except LostError:
                self.status.state = "ended"
                self.status.message = (f"{self.source} was closed by its sender: the face holds its last pose "
                                       f"(recorded keys are kept)")
                break
            if len(ts) == 0:
                break
            pieces.append(np.array(view[:len(ts)], dtype=np.float64))
            stamps.append(np.asarray(ts))
            if len(ts) < PULL_CHUNK:
                break
        if not pieces:
            self.last_frames = np.zeros(0, dtype=np.int64)
            self.last_weights = np.zeros((0, len(self.output_names)))
            if self.status.state != "ended":
                self._check_stall()
            return self.envelopes_now, self.weights_now
        return self.step(np.concatenate(pieces), np.concatenate(stamps))

    # ------------------------------------------------------------------ internals
    def _check_stall(self) -> None:
        quiet = self.clock() - self._last_sample_clock
        if self.status.state in ("live", "calibrating") and quiet > self.settings.stall_s:
            self.status.state = "stalled"
            self.status.message = (f"{self.source}: no samples for {quiet:.1f} s; the face holds its last pose "
                                   f"(recorded keys are kept) until the stream resumes")

    def _calibration_message(self) -> str:
        if not self.calibration_frames:
            return "live"
        return (f"calibrating on the first {self.settings.calibration_s:g} s: rest, then show the expressions "
                f"(the face moves after that)")

    def _add_frames(self, envelopes: np.ndarray) -> None:
        if not self.calibrated:
            self._raw.extend(envelopes)
            if len(self._raw) < self.calibration_frames:
                return
            raw = np.array(self._raw)
            self.references = calibration_references(self.spec, raw[:self.calibration_frames], self.present,
                                                     self.model.fps, self.source)
            self._raw = []
            self.status.state, self.status.message = "live", "calibrated: live"
            envelopes = raw
        self._inputs = np.concatenate([self._inputs, self._normalise(envelopes)])

    def _normalise(self, envelopes: np.ndarray) -> np.ndarray:
        values = normalise_envelopes(envelopes, self.references) * float(self.settings.sensitivity)
        full = np.zeros((values.shape[0], len(self.model.input_names)))
        full[:, self.columns] = values
        return full

    def _infer(self, outputs: np.ndarray) -> np.ndarray:
        rows = np.maximum(outputs[:, None] + self.offsets[None, :], 0) - self._inputs_start
        windows = self._inputs[rows]
        predicted = self.model.infer(windows, self.mask if self.model.masked else None).astype(np.float64)
        predicted = predicted[:, self.output_columns]
        return np.clip(predicted, *self.clip) if self.clip else predicted

    def _trim(self) -> None:
        keep_from = max(0, self.next_output - self.before)
        drop = keep_from - self._inputs_start
        if drop > 0:
            self._inputs = self._inputs[drop:]
            self._inputs_start = keep_from


def _lsl_now() -> float:
    return import_pylsl().local_clock()


def _header_source(labels, rate_hz: float, source: str) -> RecordingSource:
    """A recording header for a stream's labels (no samples), so labels map to sites as a file's do."""
    return RecordingSource(float(rate_hz), list(labels), ["emg"] * len(labels), 0,
                           lambda a, b: np.zeros((len(labels), 0)), [], source, {})


def check_stream(labels, rate_hz: float, settings: LiveSettings, source: str) -> None:
    """Refuse a stream the chain cannot read or that is not the one expected (rate, channel count)."""
    if not labels:
        raise InputError(f"{source} has no channels")
    if not rate_hz > 0:
        raise InputError(f"{source} has an irregular rate (nominal rate 0): sEMG needs a fixed sampling rate")
    if rate_hz < MIN_RAW_RATE_HZ:
        raise InputError(f"{source} runs at {rate_hz:g} Hz, too low for raw sEMG (facial EMG is sampled at "
                         f"≥ 1000 Hz); is it an envelope or another signal?")
    if settings.expected_rate_hz is not None and abs(rate_hz - settings.expected_rate_hz) > 1e-6:
        raise InputError(f"{source} runs at {rate_hz:g} Hz, not the {settings.expected_rate_hz:g} Hz expected")
    if settings.expected_channels is not None and len(labels) != settings.expected_channels:
        raise InputError(f"{source} has {len(labels)} channels, not the {settings.expected_channels} expected")


def chain_settings(model: Model, settings: LiveSettings = LiveSettings()):
    """The model's own processing (its RMS window, band, envelope), run causally: the mains notches
    with harmonics and the drift high-pass, without mean removal or look-ahead."""
    return model.processing_settings(notch_hz=tuple(settings.notch_hz), notch_harmonics=True, drift_highpass_hz=10.0,
                                      channel_map=settings.channel_map, side=settings.side, mirror=settings.mirror,
                                      nan_policy=settings.nan_policy, chunk_s=None)


def covered_sites(model: Model, labels, rate_hz: float, processing, source: str) -> tuple[str, ...]:
    """The model's sites the stream's channels record, in model order; refuses a stream a model
    cannot run on (none of its sites, or for a model without a mask any missing), naming them."""
    covered = select_channels(_header_source(labels, rate_hz, source), processing).names
    present = tuple(n for n in model.input_names if n in covered)
    missing = [n for n in model.input_names if n not in covered]
    if not present:
        raise ModelMismatchError(f"{source}'s channels ({', '.join(labels)}) cover none of the "
                                 f"{len(model.input_names)} sites {model.path.name} reads; label them with site "
                                 f"names (Zyg_L, Corr_R, …) or give a channel map")
    if missing and not model.masked:
        raise ModelMismatchError(f"{source} covers {len(present)} of the {len(model.input_names)} sites "
                                 f"{model.path.name} needs; missing: {', '.join(missing)} (a channel-flexible "
                                 f"model runs on any subset)")
    return present


def normalisation_spec(model: Model, settings: LiveSettings) -> dict:
    """The model's input normalisation with the live calibration choice applied."""
    spec = dict(model.metadata.input_normalisation)
    if settings.calibration is not None:
        if spec["method"] != "activity":
            raise ModelMismatchError(f"{model.path.name} reads {spec['method']!r}-normalised envelopes; it has "
                                     f"no calibration choice (models with an 'activity' input have)")
        spec["calibration"] = settings.calibration
    if not settings.sensitivity > 0:
        raise InputError(f"sensitivity must be positive, got {settings.sensitivity}")
    if settings.sensitivity != 1.0 and spec["method"] != "activity":
        raise ModelMismatchError(f"{model.path.name} reads {spec['method']!r}-normalised envelopes, not calibrated "
                                 f"activity: it has no sensitivity; use 1")
    return spec


def calibration_references(spec: dict, envelopes: np.ndarray, names, fps: float, source: str) -> dict:
    """References from the calibration period's envelope frames (the same code as offline); for a
    posed-maximum calibration the whole period is the block of maxima."""
    spec = dict(spec)
    spec.pop("segments_s", None)
    if spec.get("method") == "activity" and spec.get("calibration") == "calibration":
        times = np.arange(envelopes.shape[0]) / fps
        return normalisation_references(envelopes, spec, times_s=times, segments_s=[(0.0, float(times[-1]))],
                                        names=names, source=f"{source} (calibration period)")
    return normalisation_references(envelopes, spec, names=names, source=f"{source} (calibration period)")


# ----------------------------------------------------------------------------------------- offline
@dataclass
class CausalDrive:
    """The offline causal path's result: envelopes of every frame, weights of the driven frames."""

    envelopes: MuscleTrack  # µV, frames 0..n-1 at the model's fps
    expression: ExpressionTrack  # weights of frames first_frame.., at the model's fps
    first_frame: int  # the envelope frame of the expression's row 0
    references: dict


def causal_drive(recording: Recording | RecordingSource, model: Model,
                 settings: LiveSettings = LiveSettings(), *, labels=None) -> CausalDrive:
    """What a live session on a stream of ``recording`` shows, computed offline in one pass.

    The recording's channels are read as a stream's (``labels``: the names it would carry, default
    its own); the causal chain over the whole array, references from the calibration period, the
    model on every window whose last frame exists, edge padded at the start like the live driver.
    Frames before the end of calibration (less the model's look-ahead) get no weights.
    """
    from .envelopes.streaming import causal_envelopes

    source = recording if isinstance(recording, RecordingSource) else RecordingSource.from_recording(recording)
    name = source.source or "recording"
    labels = tuple(labels or source.channel_names)
    check_stream(labels, source.rate_hz, settings, name)
    processing = chain_settings(model, settings)
    present = covered_sites(model, labels, source.rate_hz, processing, name)
    renamed = replace(source, channel_names=list(labels), channel_types=["emg"] * len(labels))
    envelopes = causal_envelopes(renamed, model.fps, replace(processing, channels=present))
    spec = normalisation_spec(model, settings)
    after = int(window_offsets(model.window, model.alignment)[-1])
    if settings.references:
        refs, calibration_frames = dict(settings.references), 0
    elif spec["method"] == "none":
        refs, calibration_frames = {"method": "none"}, 0
    else:
        calibration_frames = max(1, int(math.ceil(settings.calibration_s * model.fps - 1e-9)))
        if envelopes.n_frames < calibration_frames:
            raise InputError(f"{name}: {envelopes.n_frames / model.fps:.2f} s is shorter than the "
                             f"{settings.calibration_s:g} s calibration period")
        refs = calibration_references(spec, envelopes.values[:calibration_frames], present, model.fps, name)
    first = max(0, calibration_frames - 1 - after)
    last = envelopes.n_frames - 1 - after
    if last < first:
        raise InputError(f"{name}: too short for any weights after calibration and the model's window")
    full = np.zeros((envelopes.n_frames, len(model.input_names)))
    columns = [model.input_names.index(n) for n in present]
    full[:, columns] = normalise_envelopes(envelopes.values, refs) * float(settings.sensitivity)
    mask = np.array([n in present for n in model.input_names], dtype=np.float32)
    windows = make_windows(full, model.window, model.alignment)[first:last + 1]
    predicted = model.infer(windows, mask if model.masked else None).astype(np.float64)
    names = model.driven_outputs(present) if model.masked else model.output_names
    predicted = predicted[:, [model.output_names.index(n) for n in names]]
    if model.metadata.output_space == "arkit52":
        predicted = np.clip(predicted, 0.0, 1.0)
    expression = ExpressionTrack(predicted, tuple(names), model.fps, model.metadata.output_space,
                                 model.metadata.output_units, first / model.fps,
                                 {"model": model.path.name, "source": name, "causal": True})
    return CausalDrive(envelopes, expression, first, refs)


# ----------------------------------------------------------------------------------------- replay
def site_recording(recording: Recording | RecordingSource, processing=None) -> Recording:
    """The recording as a stream carries it: one channel per montage site (monopolar pairs made
    bipolar, aliases resolved), labelled with the site names, in µV."""
    from .envelopes import ProcessingSettings

    source = recording if isinstance(recording, RecordingSource) else RecordingSource.from_recording(recording)
    selection = select_channels(source, processing or ProcessingSettings(notch_hz=(50.0,)))
    data = selection.derive(source.read())
    return Recording(data, source.rate_hz, list(selection.names), ["emg"] * len(selection.names),
                     list(source.annotations), source.source, {"channel_map": selection.report})


def make_outlet(name: str, labels, rate_hz: float, *, stream_type: str = "EMG", source_id: str = "",
                chunk_samples: int = 0, max_buffered_s: int = 60):
    """An LSL outlet for sEMG in µV: ``double64`` samples, ``desc/channels/channel`` with label,
    unit ("microvolts") and type ("EMG") per channel."""
    pylsl = import_pylsl()
    info = pylsl.StreamInfo(name, stream_type, len(labels), float(rate_hz), "double64", source_id or name)
    channels = info.desc().append_child("channels")
    for label in labels:
        channel = channels.append_child("channel")
        channel.append_child_value("label", str(label))
        channel.append_child_value("unit", "microvolts")
        channel.append_child_value("type", "EMG")
    info.desc().append_child("acquisition").append_child_value("manufacturer", "EIFER for Blender (replay)")
    return pylsl.StreamOutlet(info, chunk_samples, max_buffered_s)


def replay(outlet, data_uv: np.ndarray, rate_hz: float, *, chunk_ms: float = 10.0, loop: bool = False,
           speed: float = 1.0, should_stop: Callable[[], bool] | None = None,
           sleep: Callable[[float], None] = time.sleep) -> int:
    """Push ``data_uv`` (channels, samples) through ``outlet`` at its own rate (times ``speed``),
    ``chunk_ms`` at a time, on the wall clock (a late chunk is sent at once, never skipped); returns
    the samples sent. ``loop`` starts again at the end until ``should_stop()`` says stop."""
    pylsl = import_pylsl()
    n = data_uv.shape[1]
    step = max(1, int(round(chunk_ms / 1000.0 * rate_hz)))
    frames = np.ascontiguousarray(np.asarray(data_uv, dtype=np.float64).T)
    sent, started = 0, time.perf_counter()
    while True:
        for a in range(0, n, step):
            if should_stop is not None and should_stop():
                return sent
            b = min(n, a + step)
            due = started + (sent + b - a) / (rate_hz * speed)  # the chunk's last sample is due then
            wait = due - time.perf_counter()
            if wait > 0:
                sleep(wait)
            outlet.push_chunk(frames[a:b], pylsl.local_clock())
            sent += b - a
        if not loop:
            if outlet.have_consumers():
                sleep(LINGER_S)  # an outlet closed at once drops what its consumers have not fetched yet
            return sent
