"""Smoke test of a built extension zip in a plain Blender: install, enable, and the user's flow.

Run it with the Python of a virtual environment that holds only ``bpy`` and what the bpy wheel
needs (a real Blender's own site-packages: numpy, requests, zstandard, …), so every other import
must come from the wheels inside the zip::

    .venv-bpy45/bin/python tests/smoke/smoke_flow.py dist/eifer_blender-0.1.0-linux_x64.zip

The zip is installed with ``bpy.ops.extensions.package_install_files`` into a fresh
``BLENDER_USER_RESOURCES`` folder, enabled, and then: the bundled packages import from the
extension's site-packages (numpy from Blender's), the open head is added, the example recording
imported, the face driven, muscles inferred and compared (when this build registers those
operators), every recording format written and read back, the .blend saved and reopened in this
process and in a new Blender process with the same user folder. Each step prints PASS or FAIL with
its time; the last line is ``smoke: N passed, M failed`` (exit status 1 on any failure).

``--models DIR`` drives with the ``emg2arkit.onnx``/``arkit2emg.onnx`` in DIR instead of the
shipped ones (for a zip built before the shipped models exist).
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "recordings" / "simulated_emotions.edf"
MODULE = "bl_ext.user_default.eifer_blender"
BUNDLED = ("scipy", "mne", "onnxruntime", "matplotlib", "edfio", "pybv", "eeglabio", "pyxdf")
SAMPLE_FRAMES = (1, 30, 90, 150, 240)
FPS = 30


def _args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zip", type=Path, nargs="?", help="the built linux-x64 extension zip")
    parser.add_argument("--user-dir", type=Path, help="BLENDER_USER_RESOURCES (default: a new temporary folder)")
    parser.add_argument("--work-dir", type=Path, help="where the .blend and exports go (default: temporary)")
    parser.add_argument("--models", type=Path, help="folder with emg2arkit.onnx and arkit2emg.onnx to use")
    parser.add_argument("--reopen", type=Path, help=argparse.SUPPRESS)  # internal: the second process
    parser.add_argument("--expect", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


ARGS = _args()
USER_DIR = Path(ARGS.user_dir or tempfile.mkdtemp(prefix="eifer-smoke-user-")).resolve()
if ARGS.user_dir is None:  # a folder of our own (the installed wheels, ~440 MB) goes when we do
    atexit.register(shutil.rmtree, USER_DIR, ignore_errors=True)
os.environ["BLENDER_USER_RESOURCES"] = str(USER_DIR)  # read once, when bpy is first imported

import bpy  # noqa: E402  (after the environment is set)
import addon_utils  # noqa: E402, I001  (on sys.path once bpy is imported)


def ext(name: str):
    """A module of the installed extension, e.g. ``ext("core.recording")``."""
    import importlib

    return importlib.import_module(f"{MODULE}.{name}")


def registered(operator: str) -> bool:
    return hasattr(bpy.types, f"EIFER_OT_{operator}")


def call(operator: str, **kwargs) -> None:
    result = getattr(bpy.ops.eifer, operator)(**kwargs)
    assert result == {"FINISHED"}, f"bpy.ops.eifer.{operator} returned {result}"


def extension_site_packages() -> Path:
    """The one site-packages that Blender installs every extension's wheels into."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = USER_DIR / "extensions" / ".local" / "lib" / version / "site-packages"
    assert site.is_dir(), f"no {site}: the wheels were not installed"
    return site


def bundled_modules() -> tuple[dict, dict]:
    """The bundled packages imported, and those that resolved outside the extension's wheels."""
    import importlib

    modules = {name: importlib.import_module(name) for name in BUNDLED}
    elsewhere = {name: m.__file__ for name, m in modules.items()
                 if USER_DIR not in Path(m.__file__).resolve().parents}
    return modules, elsewhere


def shape_key_values(face, frames=SAMPLE_FRAMES) -> dict[str, list[float]]:
    """Every shape key's evaluated value at ``frames`` (plain bpy: works on every version)."""
    scene = bpy.context.scene
    values = {kb.name: [] for kb in face.data.shape_keys.key_blocks[1:]}
    for frame in frames:
        scene.frame_set(frame)
        for kb in face.data.shape_keys.key_blocks[1:]:
            values[kb.name].append(round(float(kb.value), 6))
    return values


def object_curve_values(obj, frames=SAMPLE_FRAMES) -> dict[str, list[float]]:
    """The object's numeric channel properties at ``frames`` (the EMG objects' muscle curves)."""
    scene = bpy.context.scene
    names = [k for k in obj.keys() if isinstance(obj[k], float) and k.startswith("emg:")]
    values = {k: [] for k in names}
    for frame in frames:
        scene.frame_set(frame)
        for k in names:
            values[k].append(round(float(obj[k]), 6))
    return values


class Skip(Exception):
    """A step this build cannot run (an operator it does not register yet)."""


class Flow:
    """The steps of one smoke run; each records PASS, FAIL or SKIP and its time."""

    def __init__(self, work: Path):
        self.work, self.results, self.state = work, [], {}

    def run(self, name: str, fn) -> bool:
        started = time.perf_counter()
        try:
            note = fn()
        except Skip as why:
            self.results.append((name, None))
            print(f"SKIP {name}: {why}", flush=True)
            return True
        except Exception as exc:  # a smoke step reports every failure, whatever raised it
            self.results.append((name, False))
            print(f"FAIL {name} ({time.perf_counter() - started:.1f} s): {type(exc).__name__}: {exc}", flush=True)
            traceback.print_exc()
            return False
        self.results.append((name, True))
        print(f"PASS {name} ({time.perf_counter() - started:.1f} s){': ' + note if note else ''}", flush=True)
        return True

    # ---- steps -------------------------------------------------------------------------------

    def install(self):
        zip_path = ARGS.zip.resolve()
        assert zip_path.is_file(), f"{zip_path}: no such zip"
        result = bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default",
                                                          enable_on_install=True)
        assert result == {"FINISHED"}, result
        assert addon_utils.check(MODULE)[1], f"{MODULE} is not enabled after installing {zip_path.name}"
        installed = Path(sys.modules[MODULE].__file__).resolve()
        assert USER_DIR in installed.parents, f"installed at {installed}, outside {USER_DIR}"
        return f"{zip_path.name} into {installed.parent}"

    def bundled_imports(self):
        site = extension_site_packages()
        missing = [name for name in BUNDLED if not (site / name).is_dir()]
        assert not missing, f"not installed from the wheels into {site}: {missing}"
        assert not (site / "numpy").exists(), f"a numpy was installed from the wheels into {site}"
        modules, elsewhere = bundled_modules()
        import numpy

        assert USER_DIR not in Path(numpy.__file__).resolve().parents, "numpy came from the extension"
        note = f"numpy {numpy.__version__} (Blender's); " + ", ".join(
            f"{name} {getattr(module, '__version__', '?')}" for name, module in modules.items())
        if elsewhere:
            # Blender appends a site-packages created during the session; from the next start on it
            # comes first. The new-process step checks that.
            note += f"; until restart this Python's own copies of {', '.join(sorted(elsewhere))} come first"
        return note

    def add_open_head(self):
        bpy.ops.wm.read_homefile(use_empty=True)
        scene = bpy.context.scene
        scene.render.fps, scene.render.fps_base = FPS, 1.0
        scene.frame_start, scene.frame_end = 1, 240
        call("add_open_head")
        face = bpy.context.scene.eifer.face
        assert face is not None and len(face.data.shape_keys.key_blocks) == 53, "no open head with 52 shapes"
        if ARGS.models:
            scene.eifer.model_path = str(ARGS.models.resolve() / "emg2arkit.onnx")
            scene.eifer.inverse_model_path = str(ARGS.models.resolve() / "arkit2emg.onnx")
        return f"{face.name}, {len(face.data.vertices)} vertices"

    def import_recording(self):
        call("import_emg", filepath=str(EXAMPLE))
        recording = bpy.context.scene.eifer.recording
        assert recording is not None and ext("blender.anim.emg_object").kind(recording) == "recording"
        channels = object_curve_values(recording)
        assert len(channels) >= 8, f"only {len(channels)} channels keyed on {recording.name}"
        moving = [k for k, v in channels.items() if max(v) > min(v)]
        assert moving, "the imported envelopes do not change over time"
        return f"{recording.name}: {len(channels)} channels"

    def drive(self):
        call("drive_face")
        face = bpy.context.scene.eifer.face
        values = shape_key_values(face)
        moving = sorted(k for k, v in values.items() if max(v) - min(v) > 1e-4)
        assert len(moving) >= 5, f"only {moving} shape keys move after driving"
        assert all(0.0 - 1e-6 <= x <= 1.0 + 1e-6 for v in values.values() for x in v), "values outside [0, 1]"
        self.state["face"] = values
        return f"{len(moving)} of {len(values)} shape keys animated"

    def infer(self):
        if not registered("infer_muscles"):
            raise Skip("this build registers no eifer.infer_muscles operator")
        call("infer_muscles")
        inferred = bpy.context.scene.eifer.inferred
        assert inferred is not None and ext("blender.anim.emg_object").kind(inferred) == "inferred"
        values = object_curve_values(inferred)
        assert len(values) >= 8 and any(max(v) > min(v) for v in values.values()), "flat inferred muscles"
        self.state["inferred"] = inferred.name
        return f"{inferred.name}: {len(values)} muscles"

    def compare(self):
        if not registered("compare_emg") or "inferred" not in self.state:
            raise Skip("no eifer.compare_emg operator, or nothing was inferred")
        settings = bpy.context.scene.eifer
        settings.compare_output = str(self.work / "compare")
        call("compare_emg")
        png, csv = Path(settings.compare_png), Path(settings.compare_csv)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000, f"{png}: no plot"
        assert len(csv.read_text().splitlines()) >= 3, f"{csv}: no table"
        return settings.compare_summary

    def formats(self):
        recording_io = ext("core.recording")
        source = recording_io.read_recording(EXAMPLE)
        n_samples = int(2 * source.rate_hz)
        short = recording_io.Recording(
            source.data_uv[:, :n_samples], source.rate_hz, source.channel_names, source.channel_types,
            [a for a in source.annotations if a.onset_s + a.duration_s < 2.0], "smoke", {})
        done = []
        for suffix in (".edf", ".bdf", ".fif", ".vhdr", ".set", ".xdf", ".csv"):
            path = recording_io.write_recording(short, self.work / "formats" / f"smoke{suffix}")
            back = recording_io.read_recording(path)
            assert back.channel_names == short.channel_names, f"{suffix}: names {back.channel_names}"
            assert back.data_uv.shape == short.data_uv.shape, f"{suffix}: shape {back.data_uv.shape}"
            error = float(abs(back.data_uv - short.data_uv).max())
            scale = float(abs(short.data_uv).max())
            assert error <= 1e-3 * scale, f"{suffix}: max error {error:.3g} µV of {scale:.3g}"
            done.append(suffix)
        return " ".join(done)

    def save_and_reopen(self):
        blend = self.work / "smoke.blend"
        face_name = bpy.context.scene.eifer.face.name
        assert bpy.ops.wm.save_as_mainfile(filepath=str(blend)) == {"FINISHED"}
        assert bpy.ops.wm.open_mainfile(filepath=str(blend)) == {"FINISHED"}
        scene = bpy.context.scene
        assert scene.eifer.face is not None and scene.eifer.face.name == face_name, "face pointer lost"
        assert scene.eifer.recording is not None, "recording pointer lost"
        assert shape_key_values(scene.eifer.face) == self.state["face"], "shape-key animation changed"
        expect = self.work / "expect.json"
        expect.write_text(json.dumps({"face": face_name, "values": self.state["face"]}))
        self.state["blend"], self.state["expect"] = blend, expect
        return f"{blend} ({blend.stat().st_size / 1e6:.1f} MB)"

    def reopen_in_new_process(self):
        command = [sys.executable, __file__, "--user-dir", str(USER_DIR), "--reopen", str(self.state["blend"]),
                   "--expect", str(self.state["expect"])]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0 and "REOPEN-OK" in result.stdout, (
            result.stdout[-2000:] + result.stderr[-2000:])
        return result.stdout.strip().splitlines()[-1]


def reopen_check() -> int:
    """The second process: the installed extension enables again and the saved animation is intact."""
    if not addon_utils.check(MODULE)[1]:
        addon_utils.enable(MODULE, default_set=True, handle_error=lambda exc: (_ for _ in ()).throw(exc))
    assert bpy.ops.wm.open_mainfile(filepath=str(ARGS.reopen)) == {"FINISHED"}
    expected = json.loads(ARGS.expect.read_text())
    face = bpy.context.scene.eifer.face
    assert face is not None and face.name == expected["face"], "face pointer lost"
    assert shape_key_values(face) == expected["values"], "shape-key animation differs after reopening"
    _, elsewhere = bundled_modules()  # after a start, the extension's wheels come first on sys.path
    assert not elsewhere, f"imported from outside the extension's wheels: {elsewhere}"
    call("drive_face")  # the operators work in the reopened file too, on the bundled packages
    print(f"REOPEN-OK in Blender {bpy.app.version_string}: {face.name} keys as saved, drove again "
          "with every bundled package from the extension's wheels")
    return 0


def main() -> int:
    if ARGS.reopen:
        return reopen_check()
    if ARGS.zip is None:
        print("usage: smoke_flow.py ZIP [--models DIR]", file=sys.stderr)
        return 2
    work = Path(ARGS.work_dir or tempfile.mkdtemp(prefix="eifer-smoke-work-")).resolve()
    if ARGS.work_dir is None:
        atexit.register(shutil.rmtree, work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    print(f"Blender {bpy.app.version_string}, Python {sys.version.split()[0]}, user folder {USER_DIR}", flush=True)
    flow = Flow(work)
    steps = [("install and enable the zip", flow.install),
             ("bundled packages import from the extension", flow.bundled_imports),
             ("add the open head", flow.add_open_head),
             ("import the example recording", flow.import_recording),
             ("drive the face", flow.drive),
             ("infer muscles", flow.infer),
             ("compare recorded and inferred", flow.compare),
             ("write and read every recording format", flow.formats),
             ("save and reopen the .blend", flow.save_and_reopen),
             ("reopen in a new Blender process", flow.reopen_in_new_process)]
    for i, (name, fn) in enumerate(steps):
        if not flow.run(name, fn):
            for later, _ in steps[i + 1:]:
                flow.results.append((later, False))
                print(f"FAIL {later}: not run after an earlier failure")
            break
    passed = sum(ok is True for _, ok in flow.results)
    failed = sum(ok is False for _, ok in flow.results)
    skipped = sum(ok is None for _, ok in flow.results)
    print(f"smoke: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""), flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
