"""Live: a face that follows an LSL stream of sEMG, frame by frame, and the performance recorded as keys.

The loop itself is bpy-free (:class:`~...core.live.LiveDriver`); here a :class:`LiveSession`
poses the face with each step's weights (shape-key values set directly), collects the frames
shown while recording and keys them through the rig's fast path when recording stops. Blender
only runs timers and modal operators with a window, so the operator (``ui.live_ops``) calls
:func:`live_tick` from its timer, and headless code and tests call it themselves, one call per
tick. One session per scene.
"""
from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np

from ...core.errors import InputError
from ...core.live import LIVE_MODEL, LiveDriver, LiveSettings, LiveStatus
from ...core.network import resolve_model
from ...core.network.windows import resample_frames
from ...core.tracks import ExpressionTrack, frame_times_s
from ..anim.keyframes import scene_fps
from ..rigs import rig_for

_SESSIONS: dict[str, "LiveSession"] = {}  # scene name -> its live session


@dataclass
class LiveReport:
    """What a live session left: the recorded action (None when nothing was recorded)."""

    action: object
    frames_keyed: int
    frame_start: int
    status: LiveStatus
    shapes: tuple[str, ...] = ()


class LiveSession:
    """A face following a :class:`LiveDriver`; see :func:`go_live`."""

    def __init__(self, scene, face, rig, driver: LiveDriver):
        self.scene, self.face, self.rig, self.driver = scene, face, rig, driver
        parts = getattr(rig, "parts", None) or [rig]
        self._targets = []  # (key block, output column) of every bound shape on every mesh
        for part in parts:
            blocks = part.face.data.shape_keys.key_blocks
            for column, name in enumerate(driver.output_names):
                if name in part.binding:
                    self._targets.append((blocks[part.binding[name]], column))
        self.recording = False
        self.record_start_frame = int(scene.frame_current)
        self._recorded_frames: list[np.ndarray] = []
        self._recorded_weights: list[np.ndarray] = []
        self.last_state = driver.status.state
        self.action = None

    # -------------------------------------------------------------- the tick
    def tick(self, samples=None, timestamps=None) -> LiveStatus:
        """One step: pull from the stream (or take ``samples`` (n, channels)), pose the face, record."""
        if samples is None:
            self.driver.pull_and_step()
        else:
            self.driver.step(samples, timestamps)
        weights = self.driver.weights_now
        if weights is not None and self.driver.last_frames.size:
            self.pose(weights)
            if self.recording:
                self._recorded_frames.append(self.driver.last_frames.copy())
                self._recorded_weights.append(self.driver.last_weights.copy())
        self._show_status()
        return self.driver.status

    def pose(self, weights: np.ndarray) -> None:
        """Set the bound shape keys to ``weights`` (one per ``driver.output_names``)."""
        for block, column in self._targets:
            block.value = float(weights[column])

    def _show_status(self) -> None:
        settings = self.scene.eifer
        status = self.driver.status
        settings.live_latency_ms = status.transport_ms + status.processing_ms
        settings.live_status = status.message or status.state
        settings.live_state = status.state.upper()
        settings.live_recording = self.recording
        settings.live_window_ms = 1000.0 * (self.driver.window_lag_s + self.driver.model_wait_s)

    # -------------------------------------------------------------- recording
    def start_recording(self) -> None:
        """Record from the next frame shown, keyed from the scene's current frame on."""
        self.recording = True
        self.record_start_frame = int(self.scene.frame_current)
        self._recorded_frames, self._recorded_weights = [], []
        self._show_status()

    def stop_recording(self):
        """Key what was shown since :meth:`start_recording` (nothing recorded: None); returns the action."""
        self.recording = False
        self._show_status()
        if not self._recorded_frames or not sum(f.size for f in self._recorded_frames):
            return None
        frames = np.concatenate(self._recorded_frames)
        weights = np.concatenate(self._recorded_weights)
        self._recorded_frames, self._recorded_weights = [], []
        track = self.recorded_track(frames, weights)
        name = self.driver.source.replace("LSL stream ", "").strip("'") or "stream"
        self.action = self.rig.key(track, start_frame=self.record_start_frame, action_name=f"EIFER live {name}")
        self.scene.frame_end = max(self.scene.frame_end, self.record_start_frame + track.n_frames - 1)
        return self.action

    def recorded_track(self, frames: np.ndarray, weights: np.ndarray) -> ExpressionTrack:
        """The recorded weights (model frames ``frames``) at the scene's frame rate from the first one."""
        model_fps, fps = self.driver.model.fps, scene_fps(self.scene)
        start_s = float(frames[0]) / model_fps
        if abs(fps - model_fps) > 1e-9:
            n = int(np.floor((frames[-1] - frames[0]) / model_fps * fps + 1e-9)) + 1
            weights = resample_frames(weights, model_fps, frame_times_s(n, fps, start_s), start_s)
        return ExpressionTrack(weights, self.driver.output_names, fps, self.driver.model.metadata.output_space,
                               self.driver.model.metadata.output_units, start_s,
                               {"source": self.driver.source, "model": self.driver.model.path.name, "live": True})


def go_live(face, *, scene=None, model=None, name: str | None = None, stream_type: str | None = "EMG",
            settings: LiveSettings = LiveSettings(), timeout_s: float = 5.0, providers: str = "auto",
            swap_sides: bool = False, mapping: dict | None = None, driver: LiveDriver | None = None) -> LiveSession:
    """Start a live session: the stream ``name`` (or the first of ``stream_type``) drives ``face``.

    Everything is checked before the scene is touched: the face's ARKit shape keys, the model, the
    stream (found within ``timeout_s``, its rate and channels; see :class:`core.live.LiveDriver`).
    ``model`` defaults to the shipped live model (:data:`core.live.LIVE_MODEL`); ``driver`` (tests,
    headless feeds) replaces the stream.
    """
    scene = scene or bpy.context.scene
    if scene.name in _SESSIONS:
        raise InputError(f"{scene.name} is already live: Stop first")
    rig = rig_for(face, swap_sides=swap_sides, mapping=mapping)
    if rig.space != "arkit52" or not hasattr(rig, "binding"):
        raise InputError(f"{face.name}: live drive sets ARKit shape keys; a FLAME head is driven from a recording "
                         f"(Drive Face) for now")
    if driver is None:
        loaded = resolve_model(model, LIVE_MODEL, providers)
        if loaded.metadata.output_space != "arkit52":
            raise InputError(f"{loaded.path.name} outputs {loaded.metadata.output_space!r}; live drive needs an "
                             f"EMG→ARKit model")
        driver = LiveDriver.connect(loaded, name=name or None, stream_type=stream_type or None, settings=settings,
                                    timeout_s=timeout_s)
    try:
        rig.bind(driver.output_names)
    except InputError:
        driver.close()
        raise
    session = LiveSession(scene, face, rig, driver)
    _SESSIONS[scene.name] = session
    scene.eifer.live_active = True
    session._show_status()
    return session


def live_session(scene) -> LiveSession | None:
    """The scene's live session, if one runs."""
    return _SESSIONS.get(scene.name)


def live_tick(scene, samples=None, timestamps=None) -> LiveStatus | None:
    """One tick of the scene's live session (the operator's timer calls it); None when none runs."""
    session = live_session(scene)
    return session.tick(samples, timestamps) if session is not None else None


def live_record(scene, on: bool = True):
    """Start (``on``) or stop recording; stopping keys what was shown and returns the action."""
    session = live_session(scene)
    if session is None:
        raise InputError("not live: Go Live first")
    if on:
        session.start_recording()
        return None
    return session.stop_recording()


def live_stop(scene) -> LiveReport | None:
    """Stop the scene's live session: recorded frames are keyed, the face keeps its last pose."""
    session = _SESSIONS.pop(scene.name, None)
    if session is None:
        return None
    start = session.record_start_frame
    session.driver.close()
    try:
        action = session.stop_recording() if session.recording else session.action
    except ReferenceError:  # the face was deleted (or a new file loaded) while live: nothing to key
        action = None
    keyed = 0
    if action is not None:
        keyed = max((len(c.keyframe_points) for c in _curves(action)), default=0)
    scene.eifer.live_active = False
    scene.eifer.live_recording = False
    report = LiveReport(action, keyed, start, session.driver.status, session.driver.output_names)
    scene.eifer.live_status = (f"stopped: {keyed} frames keyed from frame {start}" if action is not None
                               else "stopped")
    return report


def stop_all() -> None:
    """Stop every live session (the extension is being disabled): recorded frames are keyed."""
    for name in list(_SESSIONS):
        scene = bpy.data.scenes.get(name)
        if scene is not None:
            live_stop(scene)
        else:
            _SESSIONS.pop(name).driver.close()


def _curves(action):
    for layer in action.layers:
        for strip in layer.strips:
            for bag in strip.channelbags:
                yield from bag.fcurves
