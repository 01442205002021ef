"""Operators for live drive: Go Live (a modal timer that ticks the session), Record, Stop.

Each calls one entry point of ``jobs.live``; the timer's work is :func:`jobs.live.live_tick`, which
headless code and tests call themselves (Blender runs no timers or modal operators without a window).
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import bpy

from .reporting import (
    NeedsFace,
    provider_preference,
    reports_input_errors,
    shape_mapping,
)

if TYPE_CHECKING:
    from ...core.live import LiveSettings

TICK_S = 1.0 / 120.0  # the timer's period: 120 Hz keeps the newest sample a few ms old
JOBS_LIVE = f"{__package__.rpartition('.')[0]}.jobs.live"


def _jobs():
    """``jobs.live``, imported when live drive is first used (see the package's notes)."""
    from ..jobs import live

    return live


def live_session(scene):
    """The scene's live session; none while ``jobs.live`` was never imported (nothing went live)."""
    jobs = sys.modules.get(JOBS_LIVE)
    return None if jobs is None else jobs.live_session(scene)


def live_settings(settings) -> LiveSettings:
    """The Drive panel's live fields and calibration choice as :class:`LiveSettings`."""
    from ...core.live import LiveSettings

    # percentile is the shipped model's own reading (None keeps models without the choice usable); with
    # "Rest + Posed Maximum" the calibration period is the block of posed maxima
    chosen = None if settings.calibration == "PERCENTILE" else settings.calibration.lower()
    notch = (60.0,) if settings.mains_hz == "60" else (50.0,)
    return LiveSettings(calibration_s=settings.live_calibration_s, calibration=chosen,
                        sensitivity=settings.sensitivity, notch_hz=notch,
                        side=None if settings.side == "NONE" else settings.side.lower(), mirror=settings.mirror)


def start_live(context):
    """Go Live's work without the timer: start the scene's session on the sidebar's face and stream."""
    settings = context.scene.eifer
    model = bpy.path.abspath(settings.model_path) if settings.model_path else None
    return _jobs().go_live(settings.face, scene=context.scene, model=model, name=settings.live_stream_name.strip() or None,
                   stream_type=settings.live_stream_type.strip() or "EMG", settings=live_settings(settings),
                   timeout_s=settings.live_timeout_s, providers=provider_preference(context),
                   swap_sides=settings.swap_sides, mapping=shape_mapping(settings))


def stop_live_sessions() -> None:
    """Stop every live session before the extension's classes go (unregister)."""
    jobs = sys.modules.get(JOBS_LIVE)
    if jobs is not None:
        jobs.stop_all()


def _redraw(context) -> None:
    screen = context.screen
    for area in (screen.areas if screen else ()):
        if area.type in ("VIEW_3D", "PROPERTIES"):
            area.tag_redraw()


class EIFER_OT_go_live(NeedsFace, bpy.types.Operator):
    """Follow a live LSL stream of sEMG: the face moves with it (Esc or Stop ends it)"""

    bl_idname = "eifer.go_live"
    bl_label = "Go Live"

    _timer = None

    @classmethod
    def poll(cls, context):
        return super().poll(context) and live_session(context.scene) is None

    @reports_input_errors
    def execute(self, context):
        session = start_live(context)
        self.report({"INFO"}, f"live on {session.driver.source}: {session.driver.status.message}")
        if bpy.app.background or context.window is None:  # no timers run headless: the caller ticks
            # (jobs.live.live_tick)
            return {"FINISHED"}
        self._state = session.driver.status.state
        self._timer = context.window_manager.event_timer_add(TICK_S, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if live_session(context.scene) is None:  # Stop was pressed
            return self._finish(context)
        if event.type == "ESC":
            _jobs().live_stop(context.scene)
            return self._finish(context)
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        status = _jobs().live_tick(context.scene)
        if status is not None and status.state != self._state:
            self._state = status.state
            if status.state in ("stalled", "ended"):
                self.report({"WARNING"}, status.message)
        _redraw(context)
        return {"PASS_THROUGH"}

    def _finish(self, context):
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        _redraw(context)
        return {"FINISHED"}


class _NeedsLiveSession:
    @classmethod
    def poll(cls, context):
        return live_session(context.scene) is not None


class EIFER_OT_live_record(_NeedsLiveSession, bpy.types.Operator):
    """Record what the live face shows (press again to stop: the frames are keyed from the current frame)"""

    bl_idname = "eifer.live_record"
    bl_label = "Record"
    bl_options = {"REGISTER", "UNDO"}

    @reports_input_errors
    def execute(self, context):
        session = live_session(context.scene)
        if not session.recording:
            _jobs().live_record(context.scene, True)
            self.report({"INFO"}, f"recording from frame {session.record_start_frame}")
            return {"FINISHED"}
        action = _jobs().live_record(context.scene, False)
        self.report({"INFO"}, f"keyed {action.name}" if action is not None else "nothing was shown to record")
        return {"FINISHED"}


class EIFER_OT_live_stop(_NeedsLiveSession, bpy.types.Operator):
    """Stop following the stream: recorded frames are keyed, the face keeps its last pose"""

    bl_idname = "eifer.live_stop"
    bl_label = "Stop"
    bl_options = {"REGISTER", "UNDO"}

    @reports_input_errors
    def execute(self, context):
        report = _jobs().live_stop(context.scene)
        if report is not None and report.action is not None:
            self.report({"INFO"}, f"stopped: {report.frames_keyed} frames keyed in {report.action.name}")
        else:
            self.report({"INFO"}, "stopped")
        return {"FINISHED"}


def draw_live(layout, context) -> None:
    """The Drive panel's Live box: stream, Go Live / Record / Stop, state and latency."""
    settings = context.scene.eifer
    box = layout.box()
    box.label(text="Live (LSL)", icon="RADIOBUT_ON" if settings.live_active else "RADIOBUT_OFF")
    column = box.column()
    column.use_property_split = True
    column.use_property_decorate = False
    column.enabled = not settings.live_active
    for name in ("live_stream_name", "live_stream_type", "live_calibration_s", "live_timeout_s"):
        column.prop(settings, name)
    row = box.row(align=True)
    row.operator(EIFER_OT_go_live.bl_idname, icon="PLAY")
    row.operator(EIFER_OT_live_record.bl_idname, icon="REC", depress=settings.live_recording)
    row.operator(EIFER_OT_live_stop.bl_idname, icon="SNAP_FACE")
    if settings.live_active or settings.live_status:
        box.label(text=f"{settings.live_state.title() or 'Stopped'}: {settings.live_status}"[:120],
                  icon="ERROR" if settings.live_state in ("STALLED", "ENDED") else "INFO")
    if settings.live_active:
        box.label(text=f"Latency {settings.live_latency_ms:.1f} ms + window {settings.live_window_ms:.0f} ms",
                  icon="TIME")


CLASSES = (EIFER_OT_go_live, EIFER_OT_live_record, EIFER_OT_live_stop)
