"""Live in Blender: Go Live follows a real LSL stream on this machine (loopback only), the face shows the
step's weights, Record keys what was shown (equal to the offline causal drive of the same samples),
Stop ends it; bad streams are refused with the scene untouched; a stream that stops holds the pose,
tells the user and keeps the recorded keys. Background Blender runs no timers or modal operators, so
the tests call the timer's work (``jobs.live.live_tick``) themselves, tick by tick."""
import os
import threading
import time
import uuid

import bpy
import numpy as np
import pytest

from types import SimpleNamespace

from tests.helpers import extension_module, lsl_on_this_machine

lsl_on_this_machine()  # before anything touches liblsl in this process

RATE_HZ = 2048.0


@pytest.fixture(scope="module")
def mods(extension):
    return SimpleNamespace(live=extension_module("core.live"), network=extension_module("core.network"),
                           session=extension_module("core.simulator.session"),
                           jobs=extension_module("blender.jobs.live"),
                           keyframes=extension_module("blender.anim.keyframes"))


@pytest.fixture(scope="module")
def sites(mods):
    session = mods.session.simulate_session("emotions", subject=6, duration_s=6.0, rate_hz=RATE_HZ, fps=30.0, seed=4)
    return mods.live.site_recording(session.recording)


@pytest.fixture(scope="module")
def model(mods):
    """The model Go Live runs when the Drive panel names none: the shipped causal one."""
    return mods.network.load_model(mods.network.shipped_model_path(mods.live.LIVE_MODEL), providers="cpu")


@pytest.fixture
def face_scene(blender):
    assert bpy.ops.eifer.add_open_head() == {"FINISHED"}
    scene = bpy.context.scene
    scene.eifer.face = bpy.context.active_object
    scene.render.fps, scene.render.fps_base = 30, 1.0
    scene.frame_current = 11
    scene.eifer.live_calibration_s = 2.0
    scene.eifer.live_timeout_s = 5.0
    yield scene
    extension_module("blender.jobs.live").live_stop(scene)


def _unique(name):
    return f"eifer-blender-{name}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _sender(mods, recording, name, samples=None):
    """A replay through a real outlet in a thread, cut after ``samples``; the outlet stays open."""
    outlet = mods.live.make_outlet(name, recording.channel_names, recording.rate_hz)
    data = recording.data_uv if samples is None else recording.data_uv[:, :samples]

    def run():
        end = time.monotonic() + 5.0
        while not outlet.have_consumers() and time.monotonic() < end:
            time.sleep(0.005)
        mods.live.replay(outlet, data, recording.rate_hz, chunk_ms=10.0, speed=2.0)

    thread = threading.Thread(target=run, daemon=True)
    return outlet, thread


def _tick_until(mods, scene, done, limit_s=30.0, poll_hz=120.0):
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        status = mods.jobs.live_tick(scene)
        if done(status):
            return status
        time.sleep(1.0 / poll_hz)
    raise AssertionError(f"live session did not get there in {limit_s} s: {status}")


def _keys(action):
    out = {}
    for layer in action.layers:
        for strip in layer.strips:
            for bag in strip.channelbags:
                for curve in bag.fcurves:
                    out[curve.data_path] = curve
    return out


def _shape_values(face, names, binding):
    blocks = face.data.shape_keys.key_blocks
    return np.array([blocks[binding[n]].value for n in names])


def _check_keys_equal_offline(mods, scene, report, offline, session_rig):
    frames_expected = report.frame_start + np.arange(offline.expression.n_frames)
    curves = _keys(report.action)
    checked = 0
    for column, name in enumerate(offline.expression.names):
        if name not in session_rig.binding:
            continue
        path = f'key_blocks["{session_rig.binding[name]}"].value'
        frames, values = mods.keyframes.read_keys(curves[path])
        np.testing.assert_array_equal(frames, frames_expected.astype(np.float32))
        np.testing.assert_allclose(values, offline.expression.values[:, column], atol=1e-5)
        checked += 1
    assert checked > 10


def test_go_live_follows_the_stream_and_records_the_offline_causal_drive(mods, face_scene, sites, model):
    scene = face_scene
    name = _unique("live")
    scene.eifer.live_stream_name = name
    outlet, thread = _sender(mods, sites, name)
    assert bpy.ops.eifer.go_live() == {"FINISHED"}  # headless: started, the caller ticks
    session = mods.jobs.live_session(scene)
    assert scene.eifer.live_active and scene.eifer.live_state == "CALIBRATING"
    assert session.driver.model.path == model.path and session.driver.model_wait_s == 0
    assert bpy.ops.eifer.live_record() == {"FINISHED"} and session.recording
    thread.start()
    seen = []
    status = _tick_until(mods, scene, lambda s: s.samples >= sites.n_samples)
    for _ in range(3):
        status = mods.jobs.live_tick(scene)
        seen.append(session.driver.weights_now)
    assert status.samples == sites.n_samples and status.state == "live"
    assert scene.eifer.live_state == "LIVE" and scene.eifer.live_latency_ms > 0
    wait_s = (model.window // 2) / model.fps if model.alignment == "centred" else 0.0
    assert scene.eifer.live_window_ms == pytest.approx(1000 * (session.driver.window_lag_s + wait_s))
    # the face shows the newest weights
    names = [n for n in session.driver.output_names if n in session.rig.binding]
    shown = _shape_values(session.face, names, session.rig.binding)
    newest = session.driver.weights_now[[session.driver.output_names.index(n) for n in names]]
    np.testing.assert_allclose(shown, newest, atol=1e-6)
    assert bpy.ops.eifer.live_stop() == {"FINISHED"}
    assert mods.jobs.live_session(scene) is None and not scene.eifer.live_active
    report_action = session.action
    assert report_action is not None and report_action.name.startswith("EIFER live")
    offline = mods.live.causal_drive(sites, model, session.driver.settings)

    class _Report:  # the frame the recording was keyed from
        action, frame_start = report_action, 11

    _check_keys_equal_offline(mods, scene, _Report, offline, session.rig)
    del outlet


def test_ticks_fed_frame_by_frame_show_and_key_the_offline_causal_drive(mods, face_scene, sites, model):
    """The operator's timer work as a plain function, fed samples directly (no stream)."""
    scene = face_scene
    settings = mods.live.LiveSettings(calibration_s=2.0)
    driver = mods.live.LiveDriver(model, sites.channel_names, RATE_HZ, settings)
    session = mods.jobs.go_live(scene.eifer.face, scene=scene, driver=driver)
    mods.jobs.live_record(scene, True)
    step = int(RATE_HZ / 60)  # a 60 Hz viewport
    for a in range(0, sites.n_samples, step):
        mods.jobs.live_tick(scene, sites.data_uv[:, a:a + step].T)
    report = mods.jobs.live_stop(scene)
    offline = mods.live.causal_drive(sites, model, settings)
    assert report.frames_keyed == offline.expression.n_frames
    _check_keys_equal_offline(mods, scene, report, offline, session.rig)


def test_at_another_scene_rate_the_recording_is_resampled_to_scene_frames(mods, face_scene, sites, model):
    scene = face_scene
    scene.render.fps = 60
    driver = mods.live.LiveDriver(model, sites.channel_names, RATE_HZ, mods.live.LiveSettings(calibration_s=2.0))
    mods.jobs.go_live(scene.eifer.face, scene=scene, driver=driver)
    mods.jobs.live_record(scene, True)
    mods.jobs.live_tick(scene, sites.data_uv.T)
    report = mods.jobs.live_stop(scene)
    made = driver.status.weight_frames
    assert report.frames_keyed == 2 * (made - 1) + 1  # every 1/60 s from the first frame to the last


def test_no_stream_is_refused_after_the_time_out_and_the_scene_is_untouched(mods, face_scene):
    scene = face_scene
    scene.eifer.live_stream_name = "nobody-sends-this"
    scene.eifer.live_timeout_s = 0.3
    values = [kb.value for kb in scene.eifer.face.data.shape_keys.key_blocks]
    with pytest.raises(RuntimeError, match="no LSL stream named 'nobody-sends-this' found within 0.3 s"):
        bpy.ops.eifer.go_live()
    assert mods.jobs.live_session(scene) is None and not scene.eifer.live_active
    assert [kb.value for kb in scene.eifer.face.data.shape_keys.key_blocks] == values


@pytest.mark.parametrize("labels, rate, message", [
    (("EEG_Fz", "EEG_Cz", "ECG"), RATE_HZ, "cover none|no channel maps"),  # no facial EMG site
    (None, 100.0, "100 Hz, too low for raw sEMG"),
])
def test_a_stream_with_the_wrong_channels_or_rate_is_refused(mods, face_scene, sites, labels, rate, message):
    scene = face_scene
    name = _unique("bad")
    outlet = mods.live.make_outlet(name, labels or sites.channel_names, rate)
    scene.eifer.live_stream_name = name
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.eifer.go_live()
    assert mods.jobs.live_session(scene) is None
    del outlet


def test_a_stream_that_stops_holds_the_pose_tells_the_user_and_keeps_the_keys(mods, face_scene, sites, model):
    scene = face_scene
    name = _unique("stops")
    cut = int(4.0 * RATE_HZ)
    scene.eifer.live_stream_name = name
    outlet, thread = _sender(mods, sites, name, samples=cut)
    assert bpy.ops.eifer.go_live() == {"FINISHED"}
    session = mods.jobs.live_session(scene)
    assert bpy.ops.eifer.live_record() == {"FINISHED"}
    thread.start()
    _tick_until(mods, scene, lambda s: s.state == "stalled")
    assert session.driver.status.samples == cut
    assert scene.eifer.live_state == "STALLED" and "holds its last pose" in scene.eifer.live_status
    names = [n for n in session.driver.output_names if n in session.rig.binding]
    held = _shape_values(session.face, names, session.rig.binding)
    for _ in range(5):
        mods.jobs.live_tick(scene)
        np.testing.assert_array_equal(_shape_values(session.face, names, session.rig.binding), held)
    report = mods.jobs.live_stop(scene)
    offline = mods.live.causal_drive(mods.live.Recording(sites.data_uv[:, :cut], RATE_HZ, sites.channel_names),
                                     model, mods.live.LiveSettings(calibration_s=2.0))
    assert report.frames_keyed == offline.expression.n_frames
    _check_keys_equal_offline(mods, scene, report, offline, session.rig)
    del outlet


class _Layout:
    """Enough of UILayout to draw a panel headless, recording what it shows."""

    def __init__(self, shown):
        self.shown = shown

    def box(self):
        return self

    def row(self, align=False):
        return self

    def column(self, align=False):
        return self

    def label(self, text="", icon="NONE"):
        self.shown.append(text)

    def prop(self, data, name, **kwargs):
        assert hasattr(data, name), name
        self.shown.append(name)

    def operator(self, idname, **kwargs):
        assert hasattr(bpy.ops.eifer, idname.split(".")[1]), idname
        self.shown.append(idname)


def test_the_drive_panel_shows_live_controls_state_and_latency(mods, face_scene, sites, model):
    live_ops = extension_module("blender.ui.live_ops")
    scene = face_scene
    driver = mods.live.LiveDriver(model, sites.channel_names, RATE_HZ, mods.live.LiveSettings(calibration_s=2.0))
    mods.jobs.go_live(scene.eifer.face, scene=scene, driver=driver)
    mods.jobs.live_tick(scene, sites.data_uv.T)
    shown = []
    live_ops.draw_live(_Layout(shown), SimpleNamespace(scene=scene))
    assert {"eifer.go_live", "eifer.live_record", "eifer.live_stop", "live_stream_name"} <= set(shown)
    assert any(line.startswith("Live: ") for line in shown)
    assert any(line.startswith("Latency ") and "+ window" in line for line in shown)
