"""Resolve, pin and download the wheels that the extension zips bundle.

    python scripts/fetch_wheels.py lock    # requirements-wheels.in -> requirements-wheels-cp3XX.txt
    python scripts/fetch_wheels.py fetch   # download every locked wheel into the wheel cache
    python scripts/fetch_wheels.py list    # print the locked wheel files found in the cache

Blender's extension system installs an extension's wheels into one site-packages that comes before
Blender's own, and picks them by exact CPython tag and platform. So the zips carry wheels for two
tags, cp311 (Blender 4.5 LTS, 5.0; numpy 1.26) and cp313 (Blender 5.1, 5.2; numpy 2.x), for each
of three platforms, and never numpy or anything else Blender ships itself.

``lock`` resolves ``requirements-wheels.in`` with pip (metadata only: ``pip install --dry-run
--report``, run by CPython 3.11 and 3.13 themselves: see :func:`find_python`) for every tag and
platform, against the oldest numpy that Blender line ships, and
drops the packages that the reference bpy wheel depends on (Blender ships those). A line of
``requirements-wheels.in`` may carry an environment marker (``onnxruntime-directml==1.20.1;
sys_platform == "win32"``): pip evaluates markers for the machine it runs on, so they are evaluated
here for each target platform, the package is resolved only where its marker holds, and the lock
keeps the marker. It refuses a result whose versions differ between platforms, a package missing on
a platform its marker (or no marker: every platform) selects or present on one it does not, two
distributions of the same import package on one platform (``onnxruntime`` and
``onnxruntime-directml``), pure-Python wheels that differ between tags (Blender keeps only the
newest of two same-named pure wheels), or a result that misses a dependency some platform's
environment markers ask for. ``fetch`` downloads exactly the locked files that apply to each tag and
platform with ``pip download --no-deps --only-binary=:all: --require-hashes --platform …
--python-version …`` into a cache outside the repository (``$EIFER_WHEEL_CACHE`` or ``~/.cache/eifer-blender/wheels``),
so a second build on the same machine downloads nothing.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS_IN = REPO_ROOT / "requirements-wheels.in"
DEFAULT_CACHE = Path(os.environ.get("EIFER_WHEEL_CACHE")
                     or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                     / "eifer-blender" / "wheels")

# Compiled packages that also publish a pure-Python wheel which works as well for us: the pure one
# is shared by both tags and is smaller (fonttools: 1.2 MB instead of ~5 MB per tag and platform;
# matplotlib only needs it to embed fonts in PDF/PS).
PREFER_PURE = ("fonttools",)
LEFT_OUT_PREFIX = "# Left out because Blender ships them"
# Distributions that install the same import package (``onnxruntime``): at most one per platform.
SAME_IMPORT = (("onnxruntime", "onnxruntime-directml", "onnxruntime-gpu"),)


@dataclass(frozen=True)
class PythonTarget:
    """One CPython ABI the zips carry wheels for."""

    tag: str
    python_version: str
    numpy_floor: str     # the oldest numpy that this Blender line ships: every pin must accept it
    reference_bpy: str   # the bpy wheel whose dependencies Blender ships in its own site-packages
    blender: str
    pins: tuple[str, ...] = ()  # further constraints for this tag only


@dataclass(frozen=True)
class Platform:
    """One Blender platform (manifest ``platforms``) and how pip and markers name it."""

    name: str
    pip_platforms: tuple[str, ...]
    markers: dict = field(hash=False)

    def accepts(self, platform_tag: str) -> bool:
        """Whether a wheel's platform tag (possibly compound: ``a.b``) runs on this platform."""
        for tag in platform_tag.split("."):
            if tag == "any":
                return True
            if self.name == "linux-x64" and tag.startswith("manylinux") and tag.endswith("_x86_64"):
                return True
            if self.name == "windows-x64" and tag == "win_amd64":
                return True
            if self.name == "macos-arm64" and tag.startswith("macosx_") and tag.endswith(("_arm64", "_universal2")):
                return True
        return False


TARGETS = (
    # SciPy 1.16+ parses ~800 docstrings when scipy.signal is imported (0.3-0.4 s of every first
    # drive); 1.15 is the newest without that and supports numpy 1.26. Its numpy < 2.5 bound would
    # not hold on Blender 5.2, so cp313 takes the newest SciPy.
    PythonTarget("cp311", "3.11", "numpy==1.26.4", "bpy==4.5.15", "4.5 LTS and 5.0", ("scipy<1.16",)),
    PythonTarget("cp313", "3.13", "numpy>=2.2,<2.3", "bpy==5.1.2", "5.1 and 5.2"),
)

# manylinux_2_28 is what the bpy wheels themselves need (glibc 2.28), so any Linux that runs Blender
# runs these. macOS 13 is Blender 4.5's own minimum; pip also accepts older macosx_* and universal2.
PLATFORMS = (
    Platform("linux-x64",
             tuple(f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)) + ("manylinux2014_x86_64",),
             {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
              "platform_machine": "x86_64"}),
    Platform("windows-x64", ("win_amd64",),
             {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt",
              "platform_machine": "AMD64"}),
    Platform("macos-arm64", ("macosx_13_0_arm64",),
             {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix",
              "platform_machine": "arm64"}),
)


@dataclass
class LockedPackage:
    """One pinned distribution of a lock file: the files it may come as, with their sha256."""

    name: str
    version: str
    files: dict[str, str]  # wheel file name -> sha256
    marker: str = ""       # environment marker from requirements-wheels.in ("": every platform)

    def applies(self, target: PythonTarget, platform: Platform) -> bool:
        """Whether the zips bundle this package for ``target`` on ``platform`` (its marker holds)."""
        return marker_holds(self.marker, target, platform)


class WheelError(SystemExit):
    """A lock or fetch problem, with a message that says what to do."""


def normalise(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_path(target: PythonTarget) -> Path:
    """The committed lock file of one CPython tag."""
    return REPO_ROOT / f"requirements-wheels-{target.tag}.txt"


def wheel_tags(filename: str) -> tuple[str, str, str, str, str]:
    """``(name, version, python_tag, abi_tag, platform_tag)`` of a wheel file name."""
    parts = filename[:-len(".whl")].split("-")
    if not filename.endswith(".whl") or len(parts) not in (5, 6):
        raise WheelError(f"{filename}: not a wheel file name")
    return parts[0], parts[1], parts[-3], parts[-2], parts[-1]


def wheel_supports(filename: str, target: PythonTarget, platform: Platform) -> bool:
    """Whether Blender with ``target``'s CPython on ``platform`` would install this wheel."""
    _, _, python_tag, abi_tag, platform_tag = wheel_tags(filename)
    if not platform.accepts(platform_tag):
        return False
    minor = int(target.python_version.split(".")[1])
    for tag in python_tag.split("."):
        if tag in ("py3", f"py3{minor}", f"cp3{minor}"):
            return True
        stable = re.fullmatch(r"cp3(\d+)", tag)
        if stable and abi_tag == "abi3" and int(stable.group(1)) <= minor:
            return True
    return False


def is_pure(filename: str) -> bool:
    return wheel_tags(filename)[4] == "any"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---- lock ------------------------------------------------------------------------------------


def find_python(version: str) -> str:
    """An interpreter of CPython ``version`` (``"3.13"``), or WheelError saying how to get one.

    Looks at ``$PYTHON313`` (for 3.13), ``python3.13`` on the PATH, then ``$PYENV_ROOT/versions``.
    """
    if "%d.%d" % sys.version_info[:2] == version:
        return sys.executable
    env_name = "PYTHON" + version.replace(".", "")
    candidates = [os.environ.get(env_name), shutil.which(f"python{version}")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += [str(p) for p in sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"), reverse=True)]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    raise WheelError(f"no CPython {version} found: install it (e.g. `pyenv install {version}`) or set "
                     f"{env_name}=/path/to/python{version}")


def _pip(*args: str, python: str | None = None) -> list[str]:
    return [python or sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]


def _dry_run(requirements: list[str], target: PythonTarget, pip_platforms: tuple[str, ...], *,
             constraints: list[str] = (), implementation: str = "cp", no_deps: bool = False) -> list[dict]:
    """pip's resolution for another platform, from metadata only.

    pip runs under the target's own CPython: pip checks a distribution's Requires-Python against
    the interpreter it runs on (``--python-version`` only filters the index), so a 3.11 pip would
    quietly resolve cp313 to older releases.
    """
    with tempfile.TemporaryDirectory(prefix="eifer-lock-") as tmp:
        report = Path(tmp) / "report.json"
        constraints_file = Path(tmp) / "constraints.txt"
        constraints_file.write_text("\n".join(constraints) + "\n")
        args = ["install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
                "--python-version", target.python_version, "--implementation", implementation,
                "--target", str(Path(tmp) / "target"), "--report", str(report),
                "-c", str(constraints_file)]
        if implementation == "py":
            args += ["--abi", "none"]
        for plat in pip_platforms:
            args += ["--platform", plat]
        if no_deps:
            args.append("--no-deps")
        result = subprocess.run(_pip(*args, *requirements, python=find_python(target.python_version)),
                                capture_output=True, text=True)
        if result.returncode != 0:
            errors = [line for line in result.stderr.splitlines() if "Location 'file:" not in line]
            raise WheelError(f"pip could not resolve {' '.join(requirements)} for {target.tag} on "
                             f"{pip_platforms[0]}:\n" + "\n".join(errors[-15:]))
        return json.loads(report.read_text())["install"]


def _read_requirements_in(path: Path = REQUIREMENTS_IN) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def provided_by_blender(target: PythonTarget) -> set[str]:
    """Normalised names of the packages the reference bpy wheel depends on (Blender ships them)."""
    items = _dry_run([target.reference_bpy], target, PLATFORMS[0].pip_platforms)
    return {normalise(item["metadata"]["name"]) for item in items} - {"bpy"}


def _marker_environment(target: PythonTarget, platform: Platform) -> dict:
    return {"python_version": target.python_version, "python_full_version": target.python_version + ".0",
            "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "extra": "", **platform.markers}


def marker_holds(marker: str, target: PythonTarget, platform: Platform) -> bool:
    """Whether an environment marker (``""``: none) holds for ``target``'s CPython on ``platform``."""
    if not marker:
        return True
    from packaging.markers import Marker

    return Marker(marker).evaluate(_marker_environment(target, platform))


def _top_level(lines: list[str]) -> tuple[list, dict[str, str]]:
    """``requirements-wheels.in``'s requirements, and ``normalised name -> marker`` of the marked ones."""
    from packaging.requirements import Requirement

    requirements = [Requirement(line) for line in lines]
    markers: dict[str, str] = {}
    for requirement in requirements:
        if requirement.marker is not None:
            name = normalise(requirement.name)
            if name in markers:
                raise WheelError(f"{REQUIREMENTS_IN.name}: {requirement.name} has two marked lines; "
                                 "give it one line with one marker")
            markers[name] = str(requirement.marker)
    return requirements, markers


def _for_platform(requirements: list, target: PythonTarget, platform: Platform) -> list[str]:
    """The requirements whose marker holds on ``platform``, without the marker (pip would evaluate it
    for the machine it runs on)."""
    from packaging.requirements import Requirement

    selected = []
    for requirement in requirements:
        if requirement.marker is None or marker_holds(str(requirement.marker), target, platform):
            bare = Requirement(str(requirement))
            bare.marker = None
            selected.append(str(bare))
    return selected


def _check_markers(items_by_platform: dict[str, list[dict]], available_by_platform: dict[str, set[str]],
                   target: PythonTarget) -> None:
    # pip evaluates environment markers for the machine it runs on; check each platform's
    # resolution against that platform's markers here.
    from packaging.requirements import Requirement

    missing = set()
    for platform in PLATFORMS:
        environment = _marker_environment(target, platform)
        for item in items_by_platform[platform.name]:
            for text in item["metadata"].get("requires_dist") or ():
                requirement = Requirement(text)
                marker_ok = requirement.marker is None or requirement.marker.evaluate(environment)
                if marker_ok and normalise(requirement.name) not in available_by_platform[platform.name]:
                    missing.add(f"{requirement.name} (needed by {item['metadata']['name']} on {platform.name})")
    if missing:
        raise WheelError(f"{target.tag}: add these to {REQUIREMENTS_IN.name}: " + "; ".join(sorted(missing)))


def resolve(target: PythonTarget, *,
            pure_pins: dict[str, str] | None = None) -> tuple[dict[str, LockedPackage], set[str]]:
    """Resolve ``requirements-wheels.in`` for one CPython tag on every platform.

    Parameters
    ----------
    target : PythonTarget
        The CPython tag.
    pure_pins : dict, optional
        ``name -> version`` of pure-Python packages another tag already pinned; they are kept.

    Returns
    -------
    (dict, set)
        The bundled packages by normalised name, and the names left out because Blender ships them.
    """
    requirements, markers = _top_level(_read_requirements_in())
    provided = provided_by_blender(target)
    constraints = [target.numpy_floor, *target.pins] + [f"{n}=={v}" for n, v in sorted((pure_pins or {}).items())]
    packages: dict[str, LockedPackage] = {}
    items_by_platform: dict[str, list[dict]] = {}
    versions_by_platform: dict[str, dict[str, str]] = {}
    for platform in PLATFORMS:
        items = _dry_run(_for_platform(requirements, target, platform), target, platform.pip_platforms,
                         constraints=constraints)
        items_by_platform[platform.name] = items
        versions_by_platform[platform.name] = {}
        for item in items:
            name = normalise(item["metadata"]["name"])
            if name in provided:
                continue
            version = item["metadata"]["version"]
            filename = unquote(item["download_info"]["url"].rsplit("/", 1)[-1])
            digest = item["download_info"]["archive_info"]["hashes"]["sha256"]
            versions_by_platform[platform.name][name] = version
            package = packages.setdefault(name, LockedPackage(item["metadata"]["name"], version, {},
                                                              markers.get(name, "")))
            package.files[filename] = digest
    names = set().union(*versions_by_platform.values())
    differing, misplaced = {}, {}
    for name in sorted(names):
        found = {p: v[name] for p, v in versions_by_platform.items() if name in v}
        selected = [p.name for p in PLATFORMS if marker_holds(markers.get(name, ""), target, p)]
        if name in markers and sorted(found) != sorted(selected):
            misplaced[name] = f"resolved on {sorted(found)} but its marker {markers[name]!r} selects {selected}"
        elif len(set(found.values())) > 1 or sorted(found) != sorted(selected):
            differing[name] = {p: versions_by_platform[p].get(name, "-") for p in versions_by_platform}
    if differing:
        raise WheelError(f"{target.tag}: versions differ between platforms (-: not resolved there), pin "
                         f"them in {REQUIREMENTS_IN.name}, or give a package that only some platforms need "
                         f"an environment marker there: {differing}")
    if misplaced:
        raise WheelError(f"{target.tag}: fix these markers in {REQUIREMENTS_IN.name}: {misplaced}")
    for group in SAME_IMPORT:
        for platform, versions in versions_by_platform.items():
            both = sorted(set(group) & set(versions))
            if len(both) > 1:
                raise WheelError(f"{target.tag}: {' and '.join(both)} both resolved on {platform}; they install "
                                 f"the same import package: give them exclusive markers in {REQUIREMENTS_IN.name}")
    _check_markers(items_by_platform, {p: set(v) | provided for p, v in versions_by_platform.items()}, target)
    for name in PREFER_PURE:
        if name in packages and not all(is_pure(f) for f in packages[name].files):
            pure = _dry_run([f"{name}=={packages[name].version}"], target, ("any",), implementation="py",
                            no_deps=True)
            if pure:
                item = pure[0]
                packages[name].files = {unquote(item["download_info"]["url"].rsplit("/", 1)[-1]):
                                        item["download_info"]["archive_info"]["hashes"]["sha256"]}
    return packages, provided


def write_lock(target: PythonTarget, packages: dict[str, LockedPackage], provided: set[str]) -> Path:
    """Write the lock file of one tag in pip's hash-checking requirements format."""
    lines = [
        f"# Wheels bundled in the extension zips for {target.tag} (Blender {target.blender}).",
        f"# Generated by `python scripts/fetch_wheels.py lock` from {REQUIREMENTS_IN.name}; do not edit.",
        f"# Resolved against {', '.join((target.numpy_floor, *target.pins))}; "
        f"platforms: {', '.join(p.name for p in PLATFORMS)}.",
        "# A package with an environment marker is bundled only on the platforms where the marker holds.",
        f"{LEFT_OUT_PREFIX} ({target.reference_bpy}'s dependencies): "
        + ", ".join(sorted(provided)),
    ]
    for name in sorted(packages):
        package = packages[name]
        lines.append("")
        filenames = sorted(package.files)
        lines += [f"# wheel: {filename}" for filename in filenames]  # in the order of the hashes
        lines.append(f"{package.name}=={package.version}"
                     + (f" ; {package.marker}" if package.marker else "") + " \\")
        lines += [f"    --hash=sha256:{package.files[f]}" + (" \\" if i < len(filenames) - 1 else "")
                  for i, f in enumerate(filenames)]
    path = lock_path(target)
    path.write_text("\n".join(lines) + "\n")
    return path


def read_lock(path: Path) -> dict[str, LockedPackage]:
    """Parse a lock file written by :func:`write_lock`.

    Returns
    -------
    dict
        ``normalised name -> LockedPackage``; ``files`` maps each wheel file name to its sha256,
        ``marker`` is the package's environment marker ("" when every platform bundles it).
    """
    if not path.exists():
        raise WheelError(f"{path}: lock file missing; run `python scripts/fetch_wheels.py lock`")
    packages: dict[str, LockedPackage] = {}
    pending_files: list[str] = []
    text = path.read_text().replace("\\\n", " ")
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("# wheel:"):
            pending_files.append(line.split(":", 1)[1].strip())
            continue
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)(?:\s*;\s*(.+?))?((?:\s+--hash=sha256:[0-9a-f]{64})+)",
                             line)
        if match is None:
            raise WheelError(f"{path}: cannot read line {raw!r}")
        hashes = re.findall(r"sha256:([0-9a-f]{64})", match.group(4))
        if len(pending_files) != len(hashes):
            raise WheelError(f"{path}: {match.group(1)} lists {len(pending_files)} wheels but "
                             f"{len(hashes)} hashes")
        for filename in pending_files:
            if wheel_tags(filename)[1] != match.group(2):
                raise WheelError(f"{path}: {filename} does not match {match.group(1)}=={match.group(2)}")
        packages[normalise(match.group(1))] = LockedPackage(match.group(1), match.group(2),
                                                            dict(zip(pending_files, hashes)),
                                                            (match.group(3) or "").strip())
        pending_files = []
    return packages


def read_left_out(path: Path) -> set[str]:
    """The normalised names a lock file says it left out because Blender ships them."""
    for line in path.read_text().splitlines():
        if line.startswith(LEFT_OUT_PREFIX):
            return {normalise(n.strip()) for n in line.split("):", 1)[1].split(",") if n.strip()}
    raise WheelError(f"{path}: no '{LEFT_OUT_PREFIX}' line; run `python scripts/fetch_wheels.py lock`")


def lock() -> list[Path]:
    """Resolve and write the lock files of every tag (pure wheels shared between tags)."""
    written = []
    pure_pins: dict[str, str] = {}
    for target in TARGETS:
        started = time.perf_counter()
        packages, provided = resolve(target, pure_pins=pure_pins)
        for name, package in packages.items():
            if all(is_pure(f) for f in package.files):
                if name in pure_pins and pure_pins[name] != package.version:
                    raise WheelError(f"{name}: pure-Python wheel {package.version} for {target.tag} but "
                                     f"{pure_pins[name]} for another tag")
                pure_pins[name] = package.version
        written.append(write_lock(target, packages, provided))
        print(f"locked {len(packages)} packages for {target.tag} in {time.perf_counter() - started:.1f} s "
              f"-> {written[-1].name}")
    return written


# ---- fetch -----------------------------------------------------------------------------------


def fetch(cache_dir: Path = DEFAULT_CACHE) -> list[Path]:
    """Download every locked wheel (all tags and platforms) into ``cache_dir``; return the files.

    A warm cache (every locked file there with its locked hash) runs no pip at all.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        return locked_wheels(cache_dir)
    except WheelError:
        pass  # something is missing: let pip fetch it
    for target in TARGETS:
        packages = read_lock(lock_path(target))
        for platform in PLATFORMS:
            # the packages whose marker holds on this platform, markers evaluated here (pip would
            # evaluate them for this machine), every locked hash of each
            lines = [f"{p.name}=={p.version} " + " ".join(f"--hash=sha256:{h}" for h in p.files.values())
                     for p in packages.values() if p.applies(target, platform)]
            with tempfile.NamedTemporaryFile("w", prefix=f"eifer-{target.tag}-{platform.name}-",
                                             suffix=".txt", delete=False) as fh:
                fh.write("\n".join(lines) + "\n")
            args = ["download", "--no-deps", "--only-binary=:all:", "--require-hashes",
                    "--implementation", "cp", "--python-version", target.python_version,
                    "--dest", str(cache_dir), "-r", fh.name]
            for plat in platform.pip_platforms:
                args += ["--platform", plat]
            started = time.perf_counter()
            try:
                result = subprocess.run(_pip(*args), capture_output=True, text=True)
            finally:
                os.unlink(fh.name)
            if result.returncode != 0:
                errors = [line for line in result.stderr.splitlines() if "Location 'file:" not in line]
                raise WheelError(f"downloading the {target.tag} wheels for {platform.name} failed:\n"
                                 + "\n".join(errors[-15:]))
            print(f"fetched {target.tag} {platform.name} in {time.perf_counter() - started:.1f} s", flush=True)
    return locked_wheels(cache_dir)


def locked_wheels(cache_dir: Path = DEFAULT_CACHE) -> list[Path]:
    """The cached files of every lock, checked by sha256 and for completeness.

    Raises
    ------
    WheelError
        When a locked wheel is missing for some tag and platform its marker selects, or a file's
        hash is not locked.
    """
    selected: dict[str, Path] = {}
    for target in TARGETS:
        packages = read_lock(lock_path(target))
        for name, package in packages.items():
            for filename in package.files:
                path = cache_dir / filename
                if not path.exists():
                    raise WheelError(f"{path}: locked wheel not downloaded; run "
                                     "`python scripts/fetch_wheels.py fetch`")
                if filename not in selected:
                    digest = sha256(path)
                    if digest != package.files[filename]:
                        raise WheelError(f"{path}: sha256 {digest} is not the locked one; delete the file "
                                         "and fetch again")
                    selected[filename] = path
            for platform in PLATFORMS:
                if package.applies(target, platform) and not any(wheel_supports(f, target, platform)
                                                                 for f in package.files):
                    raise WheelError(f"{lock_path(target).name}: {package.name} has no wheel for "
                                     f"{target.tag} on {platform.name}")
    return sorted(selected.values(), key=lambda p: p.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("lock", "fetch", "list"))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"wheel cache (default {DEFAULT_CACHE})")
    args = parser.parse_args(argv)
    try:
        if args.command == "lock":
            lock()
        elif args.command == "fetch":
            files = fetch(args.cache)
            print(f"{len(files)} locked wheels in {args.cache} "
                  f"({sum(f.stat().st_size for f in files) / 1e6:.1f} MB)")
        else:
            for path in locked_wheels(args.cache):
                print(f"{path.stat().st_size / 1e6:8.2f} MB  {path.name}")
    except WheelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
