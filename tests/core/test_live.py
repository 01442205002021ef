"""Live: the causal chain (equal offline and chunked), the live step against the offline causal drive,
and a real LSL outlet/inlet pair on this machine (loopback only): no sample lost, the same weights,
bad streams refused with clear messages, a stream that stops held and reported."""
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace

import numpy as np
import pytest

from tests.helpers import live_test_model, lsl_on_this_machine

lsl_on_this_machine()  # before anything touches liblsl in this process

from eifer_blender.core.envelopes import process_recording  # noqa: E402
from eifer_blender.core.envelopes.selection import select_channels  # noqa: E402
from eifer_blender.core.envelopes.streaming import (  # noqa: E402
    CausalChain,
    causal_envelopes,
    causal_settings,
)
from eifer_blender.core.errors import InputError, ModelMismatchError  # noqa: E402
from eifer_blender.core.live import (  # noqa: E402
    LIVE_MODEL,
    LiveDriver,
    LiveSettings,
    causal_drive,
    import_pylsl,
    make_outlet,
    replay,
    site_recording,
)
from eifer_blender.core.network import load_model, shipped_model_path  # noqa: E402
from eifer_blender.core.recording import Recording, RecordingSource  # noqa: E402
from eifer_blender.core.simulator.session import simulate_session  # noqa: E402
from tests.conftest import REPO_ROOT  # noqa: E402

RATE_HZ = 2048.0


@pytest.fixture(scope="module")
def session():
    return simulate_session("emotions", subject=3, duration_s=8.0, rate_hz=RATE_HZ, fps=30.0, seed=5)


@pytest.fixture(scope="module")
def sites(session):
    """The simulated recording as a stream carries it: one channel per site, labelled with its name."""
    return site_recording(session.recording)


@pytest.fixture(scope="module")
def causal_model(tmp_path_factory):
    return load_model(live_test_model(tmp_path_factory.mktemp("live"), alignment="causal"), providers="cpu")


@pytest.fixture(scope="module")
def centred_model(tmp_path_factory):
    return load_model(live_test_model(tmp_path_factory.mktemp("live"), alignment="centred", window=7),
                      providers="cpu")


@pytest.fixture(scope="module")
def shipped():
    return load_model(shipped_model_path("emg2arkit"), providers="cpu")


@pytest.fixture(scope="module")
def shipped_live():
    return load_model(shipped_model_path(LIVE_MODEL), providers="cpu")


def _chunks(n, rng, largest=300):
    a = 0
    while a < n:
        size = int(rng.integers(1, largest))
        yield a, min(n, a + size)
        a += size


def _unique(name):
    return f"eifer-test-{name}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


# ------------------------------------------------------------------------------------- causal chain
@pytest.mark.parametrize("envelope", ["rms", "rectify"])
def test_causal_chain_gives_the_same_envelopes_whatever_the_chunking(sites, envelope):
    settings = causal_settings(envelope=envelope)
    whole = causal_envelopes(sites, 30.0, settings)
    data = sites.data_uv
    rng = np.random.default_rng(0)
    for largest, seconds in ((2, 2.0), (37, 8.0), (3000, 8.0)):  # single samples, odd sizes, long chunks
        chain = CausalChain(RATE_HZ, data.shape[0], 30.0, settings)
        part = data[:, :int(seconds * RATE_HZ)]
        frames, values = zip(*(chain.feed(part[:, a:b]) for a, b in _chunks(part.shape[1], rng, largest)))
        frames, values = np.concatenate(frames), np.concatenate(values)
        assert frames.tolist() == list(range(len(frames))) and len(frames) >= 30 * seconds - 1
        assert np.abs(values - whole.values[:len(frames)]).max() <= 1e-9
    assert whole.meta["processing"]["causal"] is True


def test_causal_rms_is_the_trailing_window_by_hand(sites):
    settings = causal_settings(notch_hz=(), drift_highpass_hz=None, band_hz=None, rms_window_s=0.125)
    track = causal_envelopes(sites, 30.0, settings)
    x = sites.data_uv
    w = int(round(0.125 * RATE_HZ))
    for k in (0, 1, 2, 45, track.n_frames - 1):
        j = int(np.floor(k * RATE_HZ / 30.0 + 1e-9))
        segment = x[:, max(0, j - w + 1):j + 1]
        np.testing.assert_allclose(track.values[k], np.sqrt((segment ** 2).mean(axis=1)), rtol=1e-12)


def test_causal_chain_never_looks_ahead(sites):
    changed = sites.data_uv.copy()
    cut = 4 * int(RATE_HZ)
    changed[:, cut:] *= -3.0
    a = causal_envelopes(sites, 30.0)
    b = causal_envelopes(Recording(changed, RATE_HZ, sites.channel_names), 30.0)
    last_before = int(np.floor((cut - 1) * 30.0 / RATE_HZ))
    np.testing.assert_array_equal(a.values[:last_before + 1], b.values[:last_before + 1])
    assert not np.allclose(a.values[last_before + 2:], b.values[last_before + 2:])


def test_causal_filters_remove_offset_mains_and_harmonics_and_keep_emg():
    rng = np.random.default_rng(1)
    n = int(6 * RATE_HZ)
    t = np.arange(n) / RATE_HZ
    emg = 5.0 * rng.standard_normal(n)
    hum = 2000.0 + 40 * np.sin(2 * np.pi * 50 * t) + 10 * np.sin(2 * np.pi * 150 * t + 1)  # offset + mains
    rec = Recording(np.stack([emg + hum, hum]), RATE_HZ, ["Zyg_L", "Corr_L"])
    track = causal_envelopes(rec, 30.0)
    settled = track.select(("Zyg_L", "Corr_L")).values[60:]  # after 2 s: the narrow notches have settled
    assert settled[:, 1].max() < 1e-3  # offset, mains and harmonic gone (40 µV of mains in)
    in_band = 5.0 * np.sqrt((500.0 - 10.0) / (RATE_HZ / 2))  # white noise's share in 10-500 Hz
    assert 0.85 * in_band < np.median(settled[:, 0]) < 1.02 * in_band  # the notches take little of it


def test_the_reported_filter_delay_is_how_late_a_burst_comes_out():
    """latency_s = half the trailing window + the filters' group delay mid-band, which a 71 Hz
    wave packet through the chain's own sections shows (peak of its envelope, in and out)."""
    from scipy import signal

    chain = CausalChain(RATE_HZ, 1, 30.0, causal_settings())
    t = np.arange(int(2 * RATE_HZ)) / RATE_HZ
    centre_hz = np.sqrt(10.0 * 500.0)
    packet = np.sin(2 * np.pi * centre_hz * t) * np.exp(-(((t - 1.0) / 0.05) ** 2))
    shift_s = (np.argmax(np.abs(signal.hilbert(signal.sosfilt(chain.sos, packet))))
               - np.argmax(np.abs(signal.hilbert(packet)))) / RATE_HZ
    assert 0.002 < chain.filter_delay_s() == pytest.approx(shift_s, abs=0.001)
    assert chain.info()["latency_s"] == pytest.approx((chain.window - 1) / 2 / RATE_HZ + chain.filter_delay_s())


def test_missing_samples_hold_the_last_one_or_are_refused(sites):
    data = sites.data_uv.copy()
    data[3, 5000:5100] = np.nan
    held = data.copy()
    held[3, 5000:5100] = data[3, 4999]
    rec = Recording(data, RATE_HZ, sites.channel_names)
    np.testing.assert_array_equal(causal_envelopes(rec, 30.0, causal_settings(nan_policy="zero")).values,
                                  causal_envelopes(Recording(held, RATE_HZ, sites.channel_names), 30.0).values)
    with pytest.raises(InputError, match="NaN"):
        causal_envelopes(rec, 30.0, causal_settings(nan_policy="raise"))


# ------------------------------------------------------------------------------------- live step
def _drive_in_chunks(driver, data, rng, largest=200):
    frames, weights = [], []
    for a, b in _chunks(data.shape[1], rng, largest):
        driver.step(data[:, a:b].T)
        frames.append(driver.last_frames)
        weights.append(driver.last_weights)
    return np.concatenate(frames), np.concatenate(weights)


@pytest.mark.parametrize("which", ["causal_model", "centred_model", "shipped", "shipped_live"])
def test_live_step_equals_the_offline_causal_drive(request, sites, which):
    model = request.getfixturevalue(which)
    settings = LiveSettings(calibration_s=2.0)
    offline = causal_drive(sites, model, settings)
    driver = LiveDriver(model, sites.channel_names, RATE_HZ, settings)
    frames, weights = _drive_in_chunks(driver, sites.data_uv, np.random.default_rng(2))
    assert frames[0] == offline.first_frame and frames.tolist() == list(range(frames[0], frames[-1] + 1))
    assert weights.shape == offline.expression.values.shape
    assert np.abs(weights - offline.expression.values).max() <= 1e-5
    assert driver.output_names == offline.expression.names
    # a centred window waits for its future half; the calibration period shows nothing
    assert driver.model_wait_s == pytest.approx((model.window // 2) / model.fps if model.alignment == "centred" else 0)
    assert offline.first_frame == max(0, 60 - 1 - int(round(driver.model_wait_s * model.fps)))
    assert driver.status.state == "live" and driver.status.samples == sites.n_samples


def test_a_masked_model_runs_on_a_subset_and_drives_only_what_it_covers(sites, causal_model):
    keep = [sites.channel_names.index(n) for n in ("Zyg_L", "Zyg_R", "Corr_L")]
    subset = Recording(sites.data_uv[keep], RATE_HZ, [sites.channel_names[i] for i in keep])
    settings = LiveSettings(calibration_s=1.0)
    offline = causal_drive(subset, causal_model, settings)
    driver = LiveDriver(causal_model, subset.channel_names, RATE_HZ, settings)
    _, weights = _drive_in_chunks(driver, subset.data_uv, np.random.default_rng(3))
    assert np.abs(weights - offline.expression.values).max() <= 1e-5
    assert set(driver.output_names) == set(causal_model.driven_outputs(["Zyg_L", "Zyg_R", "Corr_L"]))
    assert len(driver.output_names) < len(causal_model.output_names)


def test_known_references_skip_calibration(sites, causal_model):
    calibrated = causal_drive(sites, causal_model, LiveSettings(calibration_s=2.0))
    settings = LiveSettings(references=calibrated.references)
    driver = LiveDriver(causal_model, sites.channel_names, RATE_HZ, settings)
    assert driver.status.state == "live"
    _, weights = _drive_in_chunks(driver, sites.data_uv, np.random.default_rng(4))
    np.testing.assert_allclose(weights[calibrated.first_frame:], calibrated.expression.values, atol=1e-5)


def test_bad_streams_are_refused_before_anything_runs(sites, causal_model, tmp_path):
    labels = sites.channel_names
    with pytest.raises(InputError, match="irregular rate"):
        LiveDriver(causal_model, labels, 0.0)
    with pytest.raises(InputError, match="too low for raw sEMG"):
        LiveDriver(causal_model, labels, 100.0)
    with pytest.raises(InputError, match="not the 4096 Hz expected"):
        LiveDriver(causal_model, labels, RATE_HZ, LiveSettings(expected_rate_hz=4096.0))
    with pytest.raises(InputError, match="has 3 channels, not the 22 expected"):
        LiveDriver(causal_model, labels[:3], RATE_HZ, LiveSettings(expected_channels=22))
    with pytest.raises(ModelMismatchError, match="missing: .*Zyg_L"):
        every_site = load_model(live_test_model(tmp_path, masked=False), providers="cpu")  # no mask
        LiveDriver(every_site, [n for n in labels if n != "Zyg_L"], RATE_HZ)
    with pytest.raises(ModelMismatchError, match="cover none"):
        LiveDriver(causal_model, ["ch1", "ch2"], RATE_HZ)
    driver = LiveDriver(causal_model, labels, RATE_HZ)
    with pytest.raises(InputError, match=r"\(n, 22 channels\)"):
        driver.step(np.zeros((10, 21)))


def test_without_pylsl_live_features_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pylsl", None)
    with pytest.raises(InputError, match="pip install pylsl==1.18.6"):
        import_pylsl()


# ------------------------------------------------------------------------------------- LSL loopback
class _Sender:
    """A replay of ``recording`` through a real outlet, in a thread; ``stop_after`` samples cut it short."""

    def __init__(self, recording, name, *, chunk_ms=10.0, stop_after=None, keep_open=False, speed=1.0):
        self.outlet = make_outlet(name, recording.channel_names, recording.rate_hz)
        data = recording.data_uv if stop_after is None else recording.data_uv[:, :stop_after]
        self.done = threading.Event()
        self.keep_open = keep_open
        self.sent = 0

        def run():
            self.sent = replay(self.outlet, data, recording.rate_hz, chunk_ms=chunk_ms, speed=speed)
            self.done.set()
            if not keep_open:
                self.outlet = None  # the outlet closes: the inlet's stream is lost

        self.thread = threading.Thread(target=run, daemon=True)

    def start(self):
        self.thread.start()
        return self


def _wait_for_consumer(sender, timeout_s=5.0):
    end = time.monotonic() + timeout_s
    while not sender.outlet.have_consumers() and time.monotonic() < end:
        time.sleep(0.005)


def _run_live(driver, sender, *, poll_hz=120.0, until=None, limit_s=60.0):
    frames, weights = [], []
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        driver.pull_and_step()
        frames.append(driver.last_frames)
        weights.append(driver.last_weights)
        if until is not None and until(driver):
            break
        time.sleep(1.0 / poll_hz)
    return np.concatenate(frames), np.concatenate(weights)


def _loopback(data, model, name, speed=1.0):
    sender = _Sender(data, name, speed=speed)
    settings = LiveSettings(calibration_s=2.0, expected_rate_hz=RATE_HZ, expected_channels=22)
    driver = LiveDriver.connect(model, name=name, settings=settings, timeout_s=5.0)
    _wait_for_consumer(sender)
    sender.start()
    frames, weights = _run_live(driver, sender, until=lambda d: d.status.samples >= data.n_samples
                                or d.status.state == "ended")
    driver.close()
    offline = causal_drive(data, model, settings)
    return driver, data, frames, weights, offline


def test_loopback_stream_loses_no_sample_and_gives_the_offline_weights(sites, centred_model):
    driver, data, frames, weights, offline = _loopback(sites, centred_model, _unique("loop"), speed=2.0)
    assert driver.status.samples == data.n_samples  # every sample arrived, none twice
    assert weights.shape == offline.expression.values.shape
    assert np.abs(weights - offline.expression.values).max() <= 1e-5
    assert driver.status.transport_ms < 1000.0


@pytest.fixture(scope="module")
def thirty_seconds():
    session = simulate_session("mixed", subject=2, duration_s=30.0, rate_hz=RATE_HZ, fps=30.0, seed=8)
    return site_recording(session.recording)


@pytest.mark.parametrize("speed", [
    6.0,  # 30 s of samples in 5 s: the fast suite
    pytest.param(1.0, marks=[pytest.mark.realtime, pytest.mark.skipif(
        not os.environ.get("EIFER_REALTIME"), reason="30 s in real time: EIFER_REALTIME=1 runs it")]),
])
def test_loopback_30_s_loses_no_sample(thirty_seconds, causal_model, speed):
    driver, data, frames, weights, offline = _loopback(thirty_seconds, causal_model, _unique("loop30"), speed)
    assert driver.status.samples == data.n_samples == int(30 * RATE_HZ)
    assert np.abs(weights - offline.expression.values).max() <= 1e-5
    assert frames.tolist() == list(range(offline.first_frame, offline.first_frame + len(frames)))


def test_no_stream_found_times_out_with_a_clear_message(causal_model):
    started = time.monotonic()
    with pytest.raises(InputError, match=r"no LSL stream named 'nobody-sends-this' found within 0.3 s.*eifer stream"):
        LiveDriver.connect(causal_model, name="nobody-sends-this", timeout_s=0.3)
    assert time.monotonic() - started < 3.0


def test_a_stream_with_the_wrong_rate_or_channel_count_is_refused(causal_model, sites):
    name = _unique("slow")
    slow = make_outlet(name, ["Zyg_L", "Zyg_R"], 100.0)
    with pytest.raises(InputError, match="100 Hz, too low for raw sEMG"):
        LiveDriver.connect(causal_model, name=name, timeout_s=2.0)
    name = _unique("narrow")
    narrow = make_outlet(name, sites.channel_names[:3], RATE_HZ)
    with pytest.raises(InputError, match="has 3 channels, not the 22 expected"):
        LiveDriver.connect(causal_model, name=name, settings=LiveSettings(expected_channels=22), timeout_s=2.0)
    del slow, narrow


def test_a_stream_that_stops_is_reported_and_the_weights_hold(sites, causal_model):
    name = _unique("stops")
    cut = int(4.0 * RATE_HZ)
    sender = _Sender(sites, name, stop_after=cut, keep_open=True)
    driver = LiveDriver.connect(causal_model, name=name, settings=LiveSettings(calibration_s=1.0, stall_s=0.3))
    _wait_for_consumer(sender)
    sender.start()
    _run_live(driver, sender, until=lambda d: d.status.state == "stalled", limit_s=20.0)
    assert driver.status.state == "stalled" and "holds its last pose" in driver.status.message
    assert driver.status.samples == cut
    held = driver.weights_now.copy()
    for _ in range(5):
        _, weights = driver.pull_and_step()
        np.testing.assert_array_equal(weights, held)
    sender.outlet = None  # the sender closes its outlet: the stream has ended
    _run_live(driver, sender, until=lambda d: d.status.state == "ended", limit_s=10.0)
    assert driver.status.state == "ended" and "closed by its sender" in driver.status.message
    np.testing.assert_array_equal(driver.weights_now, held)


def test_eifer_stream_replays_a_file_with_site_labels(tmp_path, session, causal_model):
    from eifer_blender.core.recording import read_recording, write_recording

    path = tmp_path / "rec.edf"
    write_recording(Recording(session.recording.data_uv[:, :int(3 * RATE_HZ)], RATE_HZ,
                              session.recording.channel_names), path)
    short = read_recording(path)  # as the file stores it (EDF's 16-bit resolution)
    name = _unique("cli")
    env = {**os.environ, "LSLAPICFG": os.environ["LSLAPICFG"]}
    sender = subprocess.Popen([sys.executable, "-m", "eifer_blender", "stream", "--emg", str(path), "--name", name,
                               "--wait", "20"],
                              cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        driver = LiveDriver.connect(causal_model, name=name, settings=LiveSettings(calibration_s=1.0), timeout_s=15.0)
        assert driver.labels == tuple(select_channels(RecordingSource.from_recording(short),
                                                      causal_settings()).names)
        _run_live(driver, None, until=lambda d: d.status.state == "ended", limit_s=20.0)
        out, err = sender.communicate(timeout=20)
    finally:
        sender.kill()
    assert sender.returncode == 0, err
    assert driver.status.samples == short.n_samples, out
    assert "streaming" in out and "22 channels" in out


def test_the_shipped_live_model_runs_on_the_chain_it_was_trained_on_and_waits_for_nothing(sites, shipped_live):
    """The live model's own chain is the causal one: offline, process_recording runs it (the same
    envelopes as the live chain, frame for frame), and its window ends at "now"."""
    chain = shipped_live.processing_settings()
    assert chain.causal and shipped_live.alignment == "causal"
    offline = process_recording(sites, shipped_live.fps, chain)
    live = causal_envelopes(sites, shipped_live.fps, chain)
    assert offline.names == live.names and np.array_equal(offline.values, live.values)
    assert offline.meta["processing"]["causal"] is True
    part = process_recording(sites, shipped_live.fps, chain, start_s=2.0, n_frames=30)
    assert part.start_s == 2.0 and np.array_equal(part.values, live.values[60:90])
    with pytest.raises(InputError, match="not one of them"):
        process_recording(sites, shipped_live.fps, chain, start_s=0.01)
    driver = LiveDriver(shipped_live, sites.channel_names, RATE_HZ, LiveSettings(calibration_s=2.0))
    assert driver.model_wait_s == 0 and driver.window_lag_s < 0.08
    # envelopes made by the offline (centred) chain are refused by name, not silently misread
    centred = process_recording(sites, shipped_live.fps, replace(chain, causal=False))
    with pytest.raises(ModelMismatchError, match="causal"):
        shipped_live.run(centred)


def test_the_causal_chain_offline_keeps_the_offline_checks_and_reports(sites):
    """process_recording with causal=True refuses what the offline chain refuses and reports as it does."""
    settings = causal_settings(causal=True, notch_hz="auto")
    slow = Recording(sites.data_uv[:, ::20], RATE_HZ / 20, list(sites.channel_names))
    with pytest.raises(InputError, match="too low for raw sEMG"):
        process_recording(slow, 30.0, settings)
    gappy = sites.data_uv.copy()
    gappy[2, 4000:8000] = np.nan  # ~2 s: longer than max_gap_s
    with pytest.raises(InputError, match="gap"):
        process_recording(Recording(gappy, RATE_HZ, list(sites.channel_names)), 30.0,
                          replace(settings, nan_policy="interpolate"))
    t = np.arange(sites.n_samples) / RATE_HZ
    hum = sites.data_uv + 30.0 * np.sin(2 * np.pi * 60.0 * t)
    track = process_recording(Recording(hum, RATE_HZ, list(sites.channel_names)), 30.0, settings)
    assert 60.0 in track.meta["processing"]["notch_applied_hz"] and "60" in track.meta["processing"]["mains"]
    assert "as set" not in track.meta["processing"]["mains"]
