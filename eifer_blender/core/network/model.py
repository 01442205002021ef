"""EIFER networks at runtime: loading an ONNX file, provider choice and batched inference on tracks.

This module needs onnxruntime only (no torch, no onnx).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..envelopes import (
    ProcessingSettings,
    normalisation_references,
    normalise_envelopes,
)
from ..errors import InputError, ModelMismatchError
from ..tracks import MuscleTrack, Track, frame_times_s
from .contract import DIRECTIONS, ModelMetadata
from .gpu_runtime import prepare_for_cuda
from .providers import (  # noqa: F401  (re-exported: the provider constants live in .providers)
    COREML,
    CPU,
    CUDA,
    DIRECTML,
    PROVIDER_PREFERENCES,
    import_onnxruntime,
    start_session,
)
from .providers import choose_providers as _choose_providers
from .windows import make_windows, resample_frames, resample_to_fps

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "models"
SHIPPED_MODELS = ("emg2arkit", "arkit2emg", "emg2arkit_causal")  # the last: live (causal chain and window)
BATCH_FRAMES = 32768  # frames per inference call: bounds memory on hour-long recordings
# processing settings that change what an envelope looks like (a model trained on one reading of
# the signal cannot be fed another); notch and chunking do not matter at this level
ENVELOPE_SETTINGS = ("envelope", "rms_window_s", "band_hz", "rectify_lowpass_hz", "causal")
DIRECTION_NAMES = {"emg2exp": "EMG→expression", "exp2emg": "expression→EMG"}


def shipped_model_path(name: str) -> Path:
    """Path of a model shipped with the add-on: ``"emg2arkit"``, ``"arkit2emg"`` or ``"emg2arkit_causal"``."""
    if name not in SHIPPED_MODELS:
        raise InputError(f"no shipped model called {name!r}; shipped: {', '.join(SHIPPED_MODELS)}")
    return SHIPPED_DIR / f"{name}.onnx"


def choose_providers(preference: str = "auto") -> list[str]:
    """Execution providers to ask ONNX Runtime for, best first, ending with the CPU.

    ``preference`` is ``"auto"`` (CUDA when available, else DirectML on Windows when available,
    else CPU), ``"cpu"``, ``"cuda"``, ``"directml"`` or ``"coreml"``; see
    :func:`.providers.choose_providers`.
    """
    return _choose_providers(preference)


class Model:
    """A loaded EIFER model: metadata, an ONNX Runtime session and :meth:`run` for whole tracks.

    Use :func:`load_model` to create one.
    """

    def __init__(self, session, metadata: ModelMetadata, path: Path, provider_note: str = ""):
        self.session = session
        self.metadata = metadata
        self.path = Path(path)
        self.provider = session.get_providers()[0]  # ORT falls back silently: ask what it runs on
        self.provider_note = provider_note

    # convenience views of the contract
    @property
    def direction(self) -> str:
        return self.metadata.direction

    @property
    def input_names(self) -> tuple[str, ...]:
        return self.metadata.input_names

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.metadata.output_names

    @property
    def fps(self) -> float:
        return self.metadata.fps

    @property
    def window(self) -> int:
        return self.metadata.window

    @property
    def alignment(self) -> str:
        return self.metadata.alignment

    @property
    def masked(self) -> bool:
        """True when the model runs on any non-empty subset of its input channels."""
        return bool(self.metadata.mask_name)

    def driven_outputs(self, channels) -> tuple[str, ...]:
        """The outputs that the recorded ``channels`` move (all of them for a model without a mask)."""
        sites = self.metadata.output_sites
        if not self.masked or not sites:
            return self.output_names
        present = set(channels)
        return tuple(n for n in self.output_names if present & set(sites.get(n, ())))

    def __repr__(self) -> str:
        m = self.metadata
        return (f"<EIFER {m.direction} model {self.path.name}: {len(m.input_names)} {m.input_space} "
                f"-> {len(m.output_names)} {m.output_space}, {m.fps:g} fps, window {m.window} "
                f"{m.alignment}, on {self.provider}>")

    def require(self, direction: str | None = None, input_space: str | None = None,
                output_space: str | None = None, input_names=None, output_names=None,
                purpose: str = "") -> "Model":
        """Refuse this model unless it fits what the caller has; returns the model.

        Each given argument is checked: the direction, the spaces, and that every model input
        (output) name is among ``input_names`` (``output_names``), e.g. the recording's channels
        or the rig's shape keys. :class:`ModelMismatchError` names every difference; ``purpose``
        ("driving a face") says what the model was wanted for.
        """
        m, problems = self.metadata, []
        if direction is not None and direction != m.direction:
            need = f"; {purpose} needs an {DIRECTION_NAMES.get(direction, direction)} model" if purpose else ""
            problems.append(f"it is a {m.direction} model, {direction} is needed{need}")
        if input_space is not None and input_space != m.input_space:
            problems.append(f"it reads {m.input_space!r}, not {input_space!r}")
        if output_space is not None and output_space != m.output_space:
            problems.append(f"it writes {m.output_space!r}, not {output_space!r}")
        for label, wanted, available in (("inputs", m.input_names, input_names),
                                         ("outputs", m.output_names, output_names)):
            if available is not None:
                missing = [n for n in wanted if n not in set(available)]
                if missing:
                    problems.append(f"{len(missing)} of its {len(wanted)} {label} are missing: "
                                    f"{', '.join(missing)}")
        if problems:
            raise ModelMismatchError(f"{self.path.name} does not fit: " + "; ".join(problems))
        return self

    def check_track(self, track: Track) -> None:
        """Raise :class:`ModelMismatchError` saying what differs when ``track`` cannot feed the model."""
        m = self.metadata
        expected_type = DIRECTIONS[m.direction][1]
        what = "muscle (EMG envelope)" if expected_type is MuscleTrack else "expression"
        if not isinstance(track, expected_type):
            raise ModelMismatchError(
                f"{self.path.name} is a {m.direction} model and needs a {what} track, "
                f"got a {type(track).__name__} in space {track.space!r}")
        if track.space != m.input_space:
            raise ModelMismatchError(
                f"{self.path.name} expects input space {m.input_space!r}, the track is in "
                f"{track.space!r}")
        missing = [n for n in m.input_names if n not in track.names]
        if self.masked and len(missing) < len(m.input_names):
            return
        if self.masked:
            raise ModelMismatchError(
                f"{self.path.name} needs at least one of its {len(m.input_names)} {m.input_space} "
                f"channels ({', '.join(m.input_names)}); the track has none of them "
                f"(it has {', '.join(track.names) or 'no channels'})")
        if missing:
            raise ModelMismatchError(
                f"{self.path.name} needs {len(m.input_names)} {m.input_space} channels; the track "
                f"lacks {len(missing)}: {', '.join(missing)}")

    def processing_settings(self, **overrides):
        """The ``ProcessingSettings`` to make this model's input envelopes from a recording.

        The chain the model was trained on, without normalisation (``run`` normalises); what its
        metadata does not state is EIFER's chain (:meth:`ProcessingSettings.eifer`), the chain of
        every model trained before the settings existed. ``overrides`` change other fields, e.g.
        ``notch_hz=(60.0,)`` for 60 Hz mains, or how to read the recording (``channel_map``, ...).
        """
        eifer = ProcessingSettings.eifer().to_dict()
        chain = {k: v for k, v in self.metadata.processing.items() if k in eifer}
        return ProcessingSettings.from_dict({**eifer, **chain, "normalise": "none", **overrides})

    def _check_processing(self, track: Track) -> None:
        used, trained = track.meta.get("processing"), self.metadata.processing
        if not used or not trained:
            return
        differ = []
        for key in ENVELOPE_SETTINGS:
            if key == "rectify_lowpass_hz" and trained.get("envelope") != "rectify":
                continue
            a, b = used.get(key), trained.get(key)
            if a is not None and b is not None and np.atleast_1d(a).tolist() != np.atleast_1d(b).tolist():
                differ.append(f"{key} {a!r} (model: {b!r})")
        if differ:
            raise ModelMismatchError(
                f"{self.path.name} was trained on envelopes made differently from this track's: "
                f"{'; '.join(differ)}. Process the recording with Model.processing_settings()")

    def channel_mask(self, track: Track) -> np.ndarray:
        """1.0 for each model input channel the track has, 0.0 for the others (float32)."""
        return np.array([n in track.names for n in self.metadata.input_names], dtype=np.float32)

    def prepare_input(self, track: Track, calibration: dict | None = None,
                      sensitivity: float = 1.0) -> np.ndarray:
        """The track's values in model channel order, normalised as the model expects, float64.

        A masked model's channels that the track lacks are 0 (rest). ``calibration`` overrides
        the model's "activity" normalisation (``{"calibration": "rest" | "calibration" |
        "percentile", "segments_s": [(start, stop), ...]}``, times in the track's seconds);
        ``sensitivity`` multiplies the normalised activity (1 = as calibrated). Fixed references
        (``"offset"``, ``"scale"``, ``"channels"``, as :func:`~..envelopes.activity_references` returns
        them for another recording of the same session, e.g. a separate calibration file) are used as
        they are.
        """
        self.check_track(track)
        if track.n_frames == 0:
            raise InputError(f"{track.meta.get('source') or 'the track'}: no frames to run "
                             f"{self.path.name} on")
        present = tuple(n for n in self.metadata.input_names if n in track.names)
        values = track.select(present).values.astype(np.float64)
        bad = [n for n, ok in zip(present, np.isfinite(values).all(axis=0)) if not ok]
        if bad:
            raise InputError(f"{track.meta.get('source') or 'the track'}: NaN or infinite values in "
                             f"{', '.join(bad)}; {self.path.name} cannot run on them")
        if not sensitivity > 0:
            raise InputError(f"sensitivity must be positive, got {sensitivity}")
        if sensitivity != 1.0 and self.metadata.input_normalisation["method"] != "activity":
            raise ModelMismatchError(f"{self.path.name} reads {self.metadata.input_normalisation['method']!r}-"
                                     f"normalised envelopes, not calibrated activity: it has no sensitivity; use 1")
        normalised = self._normalise(track, values, present, calibration) * float(sensitivity)
        if len(present) == len(self.metadata.input_names):
            return normalised
        full = np.zeros((track.n_frames, len(self.metadata.input_names)))
        full[:, self.channel_mask(track) > 0] = normalised
        return full

    def _normalise(self, track: Track, values: np.ndarray, present, calibration: dict | None) -> np.ndarray:
        spec = dict(self.metadata.input_normalisation)
        if calibration:
            if spec["method"] != "activity":
                raise ModelMismatchError(
                    f"{self.path.name} reads envelopes normalised by {spec['method']!r}; it has no "
                    f"calibration choice (models with an 'activity' input have)")
            spec.update(calibration)
        if isinstance(track, MuscleTrack):
            self._check_processing(track)
        if spec["method"] == "none":
            return values
        if track.units == self.metadata.input_units:
            done = track.meta.get("normalisation")
            if done is not None:
                differ = [k for k in spec if k in done and done[k] != spec[k]
                          and k not in ("calibration", "segments_s")]
                if differ:
                    raise ModelMismatchError(
                        f"{self.path.name} expects envelopes normalised with {spec}, the track was "
                        f"normalised with {{{', '.join(f'{k!r}: {done[k]!r}' for k in differ)}}}")
            return values
        # per-recording normalisation divides by a reference of the same recording, so envelopes in
        # unknown units (an export that did not say) are read as well as µV ones
        if track.units not in ("uV", "unknown"):
            raise ModelMismatchError(
                f"{self.path.name} expects envelopes in {self.metadata.input_units!r} (or raw 'uV' "
                f"that it normalises itself), the track is in {track.units!r}")
        if "offset" in spec and "scale" in spec:  # references carried over, e.g. from a calibration recording
            channels = list(spec.get("channels") or present)
            if channels != list(present):
                raise ModelMismatchError(f"the calibration references are for {', '.join(channels)}; the "
                                         f"track has {', '.join(present)}")
            return np.asarray(normalise_envelopes(values, spec), dtype=np.float64)
        # the same code the training data went through, over the whole recording
        segments = spec.pop("segments_s", None)
        refs = normalisation_references(
            values, spec, names=present, source=track.meta.get("source") or "the track",
            times_s=frame_times_s(track.n_frames, track.fps, track.start_s) if segments else None,
            segments_s=segments)
        return np.asarray(normalise_envelopes(values, refs), dtype=np.float64)

    def _check_outputs(self, predicted: np.ndarray) -> None:
        """Refuse outputs no working model gives (NaN/Inf; ARKit weights far outside 0–1)."""
        bad = ~np.isfinite(predicted)
        if bad.any():
            raise ModelMismatchError(
                f"{self.path}: the model's outputs hold {int(bad.sum())} NaN or infinite values "
                f"(in {', '.join(np.asarray(self.output_names)[bad.any(axis=0)][:5])}); the model file is "
                f"damaged or was exported wrongly; nothing was keyed")
        low, high = ARKIT_PLAUSIBLE
        if self.metadata.output_space == "arkit52" and predicted.size and not (
                low <= predicted.min() and predicted.max() <= high):
            raise ModelMismatchError(
                f"{self.path}: the model outputs ARKit weights from {predicted.min():.3g} to "
                f"{predicted.max():.3g}, far outside 0–1; it is not a working EMG→ARKit model (or it reads "
                f"its inputs differently); nothing was keyed")

    def infer(self, windows: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Run the network on prepared windows (n, window, channels) in batches; (n, outputs) float32.

        ``mask`` (channels,): which channels were recorded, for a masked model (default: all).
        """
        windows = np.asarray(windows)
        expected = (self.metadata.window, len(self.metadata.input_names))
        if windows.ndim != 3 or windows.shape[1:] != expected:
            raise ValueError(f"windows must be (n, {expected[0]}, {expected[1]}), got {windows.shape}")
        feeds = {}
        if self.masked:
            mask = np.ones(expected[1], dtype=np.float32) if mask is None else np.asarray(mask, np.float32)
            if mask.shape != (expected[1],):
                raise ValueError(f"mask must have {expected[1]} entries, got {mask.shape}")
        out = np.empty((windows.shape[0], len(self.metadata.output_names)), dtype=np.float32)
        for start in range(0, windows.shape[0], BATCH_FRAMES):
            batch = np.ascontiguousarray(windows[start:start + BATCH_FRAMES], dtype=np.float32)
            if self.masked:
                feeds[self.metadata.mask_name] = np.broadcast_to(mask, (batch.shape[0], expected[1])).copy()
            feeds[self.metadata.input_name] = batch
            out[start:start + BATCH_FRAMES] = self.session.run(None, feeds)[0]
        return out

    def run(self, track: Track, calibration: dict | None = None, sensitivity: float = 1.0) -> Track:
        """Map a whole track through the model; returns the output at the input track's frame times.

        The input is checked (type, space, channel names), put in model channel order,
        normalised as the model expects (``calibration``, ``sensitivity``: see
        :meth:`prepare_input`), resampled to the model's fps, windowed with edge padding and run
        in batches; the output is resampled back to the input's fps. A masked model returns only
        the outputs that the track's channels drive (:meth:`driven_outputs`).
        """
        m = self.metadata
        values = self.prepare_input(track, calibration, sensitivity)
        at_model_fps, start_s = resample_to_fps(values, track.fps, m.fps, track.start_s)
        mask = self.channel_mask(track) if self.masked else None
        predicted = self.infer(make_windows(at_model_fps, m.window, m.alignment), mask)
        self._check_outputs(predicted)
        names = m.output_names
        if self.masked:
            names = self.driven_outputs(n for n in m.input_names if n in track.names)
            predicted = predicted[:, [m.output_names.index(n) for n in names]]
        if float(track.fps) != float(m.fps):
            predicted = resample_frames(predicted, m.fps, frame_times_s(track.n_frames, track.fps,
                                                                        track.start_s), start_s)
        output_type = DIRECTIONS[m.direction][2]
        meta = {"model": self.path.name, "model_version": m.version, "provider": self.provider}
        if m.output_units == "normalised":
            meta["normalisation"] = dict(m.output_normalisation)
        if self.masked:
            meta["left_alone"] = [n for n in m.output_names if n not in names]
        return output_type(np.asarray(predicted, dtype=np.float32), names, track.fps,
                           m.output_space, m.output_units, track.start_s, meta)


ARKIT_PLAUSIBLE = (-0.5, 1.5)  # ARKit weights before clipping: a working model stays near 0–1


def _session_options():
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # keep ORT's provider warnings out of Blender's console
    return options


def load_model(path, providers: str = "auto", **require) -> Model:
    """Load an EIFER ONNX model and check its metadata.

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file.
    providers : {"auto", "cpu", "cuda", "directml", "coreml"}
        Execution provider preference (:func:`.providers.choose_providers`). ``Model.provider``
        reports the one actually used (``session.get_providers()[0]``) and ``Model.provider_note``
        says why a GPU that was asked for is not used (package missing, libraries missing, driver
        too old).
    **require
        Passed to :meth:`Model.require` (``direction``, ``input_space``, ``output_space``,
        ``input_names``, ``output_names``): a model that does not fit is refused on loading.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: model file not found")
    wanted = _choose_providers(providers)  # an unknown preference is the caller's error, not the file's
    import_onnxruntime()  # first: skips a broken GPU runtime before anything imports onnxruntime
    if CUDA in wanted:
        prepare_for_cuda()  # a GPU runtime install's nvidia wheels: preload_dlls / DLL folders
    try:
        session, note = start_session(path, providers, _session_options())
    except InputError:
        raise
    except Exception as exc:  # ORT raises its own exception types for unreadable files
        raise InputError(f"{path}: ONNX Runtime cannot load this file as a model ({exc})") from exc
    props = dict(session.get_modelmeta().custom_metadata_map)
    metadata = ModelMetadata.from_props(props, source=str(path))
    _check_graph(session, metadata, path)
    model = Model(session, metadata, path, note)
    return model.require(**require) if require else model


def _check_graph(session, metadata: ModelMetadata, path: Path) -> None:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    wanted = [metadata.input_name] + ([metadata.mask_name] if metadata.mask_name else [])
    if [i.name for i in inputs] != wanted:
        raise InputError(f"{path}: graph inputs are {[i.name for i in inputs]}, metadata says "
                         f"{wanted}")
    shape = inputs[0].shape
    expected = [metadata.window, len(metadata.input_names)]
    if len(shape) != 3 or list(shape[1:]) != expected:
        raise InputError(f"{path}: graph input shape {shape} does not match metadata "
                         f"[batch, {expected[0]}, {expected[1]}]")
    out_shape = outputs[0].shape
    if len(out_shape) != 2 or out_shape[1] != len(metadata.output_names):
        raise InputError(f"{path}: graph output shape {out_shape} does not match "
                         f"{len(metadata.output_names)} output names")


def resolve_model(model: "Model | str | Path | None", default: str, providers: str = "auto") -> Model:
    """A loaded model: given, a path, a shipped name (``"emg2arkit"``), or the default shipped one."""
    if isinstance(model, Model):
        return model
    if model is None or str(model) in SHIPPED_MODELS:
        return load_model(shipped_model_path(str(model or default)), providers=providers)
    return load_model(model, providers=providers)
