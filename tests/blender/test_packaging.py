"""Shipping: the locked wheels, the per-platform zips Blender's own tool builds, and the zip in use.

The lock tests read the committed lock files. The build test fetches the locked wheels (PyPI on a
cold cache, ~430 MB; nothing on a warm one) and builds with ``blender_ext.py``. The install test
runs the smoke flow (tests/smoke/smoke_flow.py) on the linux zip with this environment's bpy 5.0.1;
`make matrix` runs the same flow on Blender 4.5 LTS and 5.2 in environments that hold only bpy.
"""
import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import build_extension  # noqa: E402
import fetch_wheels  # noqa: E402

# extensions.blender.org raised its upload limit from the alpha's 10 MB to 300 MB in May 2024
# (extension project meeting notes); a zip over it could not be published there.
UPLOAD_LIMIT_MB = 300
LOCKS = {target.tag: fetch_wheels.read_lock(fetch_wheels.lock_path(target)) for target in fetch_wheels.TARGETS}
PROVIDED = {target.tag: fetch_wheels.read_left_out(fetch_wheels.lock_path(target)) for target in fetch_wheels.TARGETS}


@pytest.fixture(scope="module")
def built_zips(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, str(REPO_ROOT / "scripts/build_extension.py"), "--output-dir", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {z.stem.rsplit("-", 1)[-1].replace("_", "-"): z for z in sorted(out.glob("eifer_blender-*.zip"))}


def _manifest_in(zip_path):
    with zipfile.ZipFile(zip_path) as archive:
        return tomllib.loads(archive.read("blender_manifest.toml").decode()), archive.namelist()


@pytest.mark.parametrize("tag", sorted(LOCKS))
def test_lock_bundles_no_numpy_nor_anything_blender_ships(tag):
    assert "numpy" in PROVIDED[tag]
    assert not set(LOCKS[tag]) & PROVIDED[tag], set(LOCKS[tag]) & PROVIDED[tag]


@pytest.mark.parametrize("target", fetch_wheels.TARGETS, ids=lambda t: t.tag)
@pytest.mark.parametrize("platform", fetch_wheels.PLATFORMS, ids=lambda p: p.name)
def test_every_locked_package_has_exactly_one_wheel_per_tag_and_platform(target, platform):
    # one wheel where the package's environment marker holds (none: everywhere), none elsewhere
    for package in LOCKS[target.tag].values():
        fitting = [f for f in package.files if fetch_wheels.wheel_supports(f, target, platform)]
        assert len(fitting) == (1 if package.applies(target, platform) else 0), (package.name, package.marker, fitting)


ORT = ("onnxruntime", "onnxruntime-directml", "onnxruntime-gpu")  # one `onnxruntime` import package


@pytest.mark.parametrize("target", fetch_wheels.TARGETS, ids=lambda t: t.tag)
def test_windows_bundles_the_directml_build_and_no_platform_bundles_two_onnxruntimes(target):
    lock = LOCKS[target.tag]
    for platform in fetch_wheels.PLATFORMS:
        bundled = [n for n in ORT if n in lock and lock[n].applies(target, platform)]
        assert bundled == (["onnxruntime-directml"] if platform.name == "windows-x64" else ["onnxruntime"]), \
            (platform.name, bundled)
    directml = lock["onnxruntime-directml"]
    assert list(directml.files) == [f"onnxruntime_directml-{directml.version}-{target.tag}-{target.tag}-win_amd64.whl"]
    assert not any(f.endswith("win_amd64.whl") for f in lock["onnxruntime"].files)


def test_lock_reads_back_markers_and_fetch_keeps_them_out_of_pip(tmp_path, monkeypatch):
    # pip evaluates markers for the machine it runs on: fetch gives it only the packages that apply
    target, windows = fetch_wheels.TARGETS[0], fetch_wheels.PLATFORMS[1]
    lock = {"a": fetch_wheels.LockedPackage("a", "1.0", {"a-1.0-cp311-cp311-win_amd64.whl": "0" * 64},
                                            'sys_platform == "win32"'),
            "b": fetch_wheels.LockedPackage("b", "2.0", {"b-2.0-py3-none-any.whl": "1" * 64})}
    monkeypatch.setattr(fetch_wheels, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(fetch_wheels, "TARGETS", (target,))
    path = fetch_wheels.write_lock(target, lock, {"numpy"})
    assert fetch_wheels.read_lock(path) == lock
    assert lock["a"].applies(target, windows) and not lock["a"].applies(target, fetch_wheels.PLATFORMS[0])
    asked = {}

    def fake_pip(cmd, **kwargs):
        asked[cmd[cmd.index("--platform") + 1]] = Path(cmd[cmd.index("-r") + 1]).read_text()
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(fetch_wheels.subprocess, "run", fake_pip)
    with pytest.raises(fetch_wheels.WheelError):  # nothing was really downloaded
        fetch_wheels.fetch(tmp_path / "cache")
    assert "a==1.0 --hash=sha256:" + "0" * 64 in asked["win_amd64"] and ";" not in asked["win_amd64"]
    assert "a==" not in asked["macosx_13_0_arm64"] and "b==2.0" in asked["macosx_13_0_arm64"]


def _fake_resolution(monkeypatch, tmp_path, requirements_in, resolved):
    """resolve() with pip replaced: ``resolved(requirements, platform_tag) -> [(name, version, requires)]``."""
    (tmp_path / "req.in").write_text(requirements_in)
    read = fetch_wheels._read_requirements_in
    monkeypatch.setattr(fetch_wheels, "_read_requirements_in", lambda: read(tmp_path / "req.in"))
    monkeypatch.setattr(fetch_wheels, "provided_by_blender", lambda target: {"numpy"})

    def dry_run(requirements, target, pip_platforms, **kwargs):
        assert not any(";" in r for r in requirements)  # markers never reach pip
        return [{"metadata": {"name": n, "version": v, "requires_dist": list(deps)},
                 "download_info": {"url": f"https://x/{n}-{v}-py3-none-any.whl",
                                   "archive_info": {"hashes": {"sha256": "0" * 64}}}}
                for n, v, deps in resolved(requirements, pip_platforms[0])]

    monkeypatch.setattr(fetch_wheels, "_dry_run", dry_run)


def test_lock_accepts_a_marked_package_only_where_its_marker_holds(monkeypatch, tmp_path):
    def resolved(requirements, plat):
        return [(r.split("==")[0], "1.0", ["dep"]) for r in requirements] + [("dep", "1.0", [])]

    _fake_resolution(monkeypatch, tmp_path, 'x==1.0; sys_platform != "win32"\ny==1.0; sys_platform == "win32"\n',
                     resolved)
    packages, _ = fetch_wheels.resolve(fetch_wheels.TARGETS[0])
    assert packages["x"].marker == 'sys_platform != "win32"' and packages["y"].marker == 'sys_platform == "win32"'
    assert packages["dep"].marker == ""


@pytest.mark.parametrize("requirements_in, resolved, message", [
    # an unmarked package that some platform does not resolve, or resolves to another version
    ("x\n", lambda reqs, plat: [("x", "1.0", [])] + ([("w", "1.0", [])] if plat == "win_amd64" else []),
     "versions differ"),
    ("x\n", lambda reqs, plat: [("x", "2.0" if plat == "win_amd64" else "1.0", [])], "versions differ"),
    # a marked package that another package pulls in where its marker does not hold
    ('x\ny; sys_platform == "win32"\n', lambda reqs, plat: [("x", "1.0", ["y"]), ("y", "1.0", [])],
     "fix these markers"),
    # both ONNX Runtimes on one platform
    ('onnxruntime\nonnxruntime-directml; sys_platform == "win32"\n',
     lambda reqs, plat: [(r.split("==")[0], "1.0", []) for r in reqs], "both resolved on windows-x64"),
    # a Windows-only dependency (marker in requires_dist) that pip did not resolve on this machine
    ("x\n", lambda reqs, plat: [("x", "1.0", ['colorama; platform_system == "Windows"'])],
     "colorama (needed by x on windows-x64)"),
])
def test_lock_still_refuses_platform_differences_that_no_marker_explains(monkeypatch, tmp_path, requirements_in,
                                                                          resolved, message):
    _fake_resolution(monkeypatch, tmp_path, requirements_in, resolved)
    with pytest.raises(fetch_wheels.WheelError, match=re.escape(message)):
        fetch_wheels.resolve(fetch_wheels.TARGETS[0])


def test_pure_python_wheels_are_the_same_for_both_tags():
    # Blender keeps only the newest of two same-named pure wheels: both tags must agree.
    pure = [{n: p.version for n, p in lock.items() if all(fetch_wheels.is_pure(f) for f in p.files)}
            for lock in LOCKS.values()]
    shared = set(pure[0]) & set(pure[1])
    assert shared and all(pure[0][n] == pure[1][n] for n in shared)


def test_windows_onnxruntime_loads_with_the_msvc_runtime_blender_ships():
    for lock in LOCKS.values():
        for name in ("onnxruntime", "onnxruntime-directml"):
            major, minor, *_ = (int(x) for x in lock[name].version.split("."))
            assert (major, minor) < (1, 21), f"{name} >= 1.21 fails to load in Blender on Windows"


# Imported only where they are used, with a clear error naming the package when absent: bioread
# (BIOPAC .acq) depends on docopt, which PyPI has only as an sdist, so no wheel set resolves; Dask
# and dask-jobqueue run batches outside Blender (``eifer batch``), never inside the extension;
# pylsl (Go Live, ``eifer stream``) is not bundled yet: its platform wheels must be locked without the
# library-less ``py3-none-any`` one (FACTS: LSL), and the error says ``pip install pylsl==1.18.6``.
OPTIONAL = {"bioread", "dask", "distributed", "dask_jobqueue", "pylsl"}


def test_every_third_party_import_of_the_addon_is_bundled_or_ships_with_blender():
    blender_modules = {"bpy", "bpy_extras", "mathutils", "addon_utils", "gpu", "bmesh", "blf", "aud", "idprop"}
    distributions = importlib.metadata.packages_distributions()
    imported = set()
    for path in (REPO_ROOT / "eifer_blender").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - blender_modules - {"eifer_blender"} - OPTIONAL
    assert {"scipy", "mne", "onnxruntime"} <= third_party  # the scan sees the lazy imports too
    for tag, lock in LOCKS.items():
        for module in sorted(third_party):
            names = {fetch_wheels.normalise(d) for d in distributions.get(module, [module])}
            assert names & (set(lock) | PROVIDED[tag]), f"{module} is imported but not bundled for {tag}"


def test_manifest_gets_the_wheel_list_before_its_first_table():
    text = (REPO_ROOT / "blender_manifest.toml").read_text()
    staged = tomllib.loads(build_extension.manifest_with_wheels(text, ["a-1.0-py3-none-any.whl"]))
    assert staged["wheels"] == ["./wheels/a-1.0-py3-none-any.whl"]
    assert staged["permissions"] == tomllib.loads(text)["permissions"]


def test_build_makes_one_valid_zip_per_platform_with_only_its_wheels(built_zips):
    platforms = build_extension.manifest_platforms()
    assert sorted(built_zips) == sorted(platforms)
    for platform_name, zip_path in built_zips.items():
        platform = next(p for p in fetch_wheels.PLATFORMS if p.name == platform_name)
        manifest, names = _manifest_in(zip_path)
        generated = manifest["build"]["generated"]  # what blender_ext wrote for this platform's zip
        assert generated["platforms"] == [platform_name]
        wheels = [n.removeprefix("wheels/") for n in names if n.startswith("wheels/") and n.endswith(".whl")]
        assert sorted("./wheels/" + w for w in wheels) == sorted(generated["wheels"])
        assert not any(w.startswith("numpy-") for w in wheels)
        for target in fetch_wheels.TARGETS:
            for package in LOCKS[target.tag].values():
                fitting = [w for w in wheels if w in package.files and fetch_wheels.wheel_supports(w, target, platform)]
                assert len(fitting) == (1 if package.applies(target, platform) else 0), \
                    (zip_path.name, target.tag, package.name, fitting)
        ort = sorted(w for w in wheels if w.split("-")[0] in ("onnxruntime", "onnxruntime_directml", "onnxruntime_gpu"))
        if platform_name == "windows-x64":  # the DirectML build for both Pythons, never beside the CPU one
            assert ort == ["onnxruntime_directml-1.20.1-cp311-cp311-win_amd64.whl",
                           "onnxruntime_directml-1.20.1-cp313-cp313-win_amd64.whl"], ort
        else:
            assert [w.split("-")[0] for w in ort] == ["onnxruntime", "onnxruntime"], ort
        assert all(any(fetch_wheels.wheel_supports(w, t, platform) for t in fetch_wheels.TARGETS) for w in wheels)
        assert "__init__.py" in names and "assets/open_head.npz" in names
        assert not any("__pycache__" in n for n in names)
        size_mb = zip_path.stat().st_size / 1e6
        assert size_mb < UPLOAD_LIMIT_MB, f"{zip_path.name}: {size_mb:.0f} MB"
        check = subprocess.run(build_extension.blender_ext("validate", "--valid-tags", build_extension.valid_tags(),
                                                           str(zip_path)), capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


def test_linux_zip_installs_into_a_fresh_user_folder_and_runs_the_whole_flow(built_zips, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, str(REPO_ROOT / "tests/smoke/smoke_flow.py"), str(built_zips["linux-x64"]),
                          "--user-dir", str(tmp_path / "user"), "--work-dir", str(tmp_path / "work")],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    summary = re.findall(r"^smoke: (\d+) passed, (\d+) failed", run.stdout, re.M)
    assert run.returncode == 0 and summary and summary[-1][1] == "0", run.stdout[-4000:] + run.stderr[-3000:]
    assert int(summary[-1][0]) >= 8
    assert "PASS reopen in a new Blender process" in run.stdout  # the bundled wheels ran after a restart
