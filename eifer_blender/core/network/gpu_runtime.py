"""The opt-in GPU runtime: which wheels, where, how big, the pip command; loading and removing it.

In: the Python tag (``"cp311"``), the platform (the manifest's names: ``"linux-x64"``,
``"windows-x64"``), a target folder (in Blender: the user ``modules`` folder, which comes before
the extension's wheels on ``sys.path`` with bpy 5.0.1, so the GPU ONNX Runtime found there wins
over the bundled CPU one); out: a :class:`Plan` to show the user and run with pip, and
:func:`load_gpu_runtime` / :func:`uninstall_plan` for afterwards. Nothing here downloads unless
:func:`run_install` is called.

Sources: onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html (CUDA/cuDNN per ORT
version; ``preload_dlls`` from 1.21), onnxruntime.ai/docs/install (``onnxruntime-gpu`` with the
nvidia wheels), PyPI (which versions have wheels: onnxruntime-gpu 1.20.0 and 1.20.2, no 1.20.1).
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .providers import CUDA, import_onnxruntime

PLATFORMS = {"linux-x64": "manylinux_2_28_x86_64", "windows-x64": "win_amd64"}
PYTHON_TAGS = ("cp311", "cp313")
# defaults: the newest CUDA 12 release on Linux (CUDA 12 drivers are common; 1.27+ need CUDA 13
# and driver ≥ 580); on Windows 1.20.2, the newest whose DLLs load with the C++ runtime some
# Blender builds ship ("DLL initialization routine failed" from 1.21 on)
DEFAULT_VERSION = {"linux-x64": "1.26.0", "windows-x64": "1.20.2"}
MISSING_VERSIONS = {"1.20.1": "onnxruntime-gpu 1.20.1 does not exist on PyPI (1.20.0 and 1.20.2 do)"}
# approximate wheel sizes in MB (Linux x86-64, measured on PyPI 2026-12; Windows is similar)
CUDA12_WHEELS = {"nvidia-cuda-runtime-cu12": 1, "nvidia-cuda-nvrtc-cu12": 24, "nvidia-cublas-cu12": 581,
                 "nvidia-cufft-cu12": 201, "nvidia-curand-cu12": 56, "nvidia-cudnn-cu12": 717,
                 "nvidia-nvjitlink-cu12": 39}
CUDA12_PINS = {"nvidia-cudnn-cu12": ">=9,<10"}
CUDA13_WHEELS = {"nvidia-cuda-runtime": 1, "nvidia-cuda-nvrtc": 25, "nvidia-cublas": 550,
                 "nvidia-cufft": 200, "nvidia-curand": 56, "nvidia-cudnn-cu13": 680, "nvidia-nvjitlink": 40}
CUDA13_PINS = {"nvidia-cuda-runtime": ">=13,<14", "nvidia-cuda-nvrtc": ">=13,<14", "nvidia-cublas": ">=13,<14",
               "nvidia-nvjitlink": ">=13,<14", "nvidia-cudnn-cu13": ">=9,<10"}
ORT_GPU_MB = 292
MANIFEST = "eifer-gpu-runtime.json"  # written into the target folder: what the install added


def _version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split(".")[:3])
    except ValueError:
        raise InputError(f"onnxruntime-gpu version must look like 1.26.0, got {version!r}") from None


@dataclass(frozen=True)
class Plan:
    """What installing the GPU runtime does: the wheels, the folder, the Python, the size, the command.

    Attributes
    ----------
    python_tag, platform : str
        ``"cp311"``/``"cp313"``; ``"linux-x64"``/``"windows-x64"``.
    target_dir : Path
        Where pip installs (``--target``).
    onnxruntime_version : str
        The ``onnxruntime-gpu`` version.
    cuda_major : int
        12 (ORT 1.20–1.26) or 13 (ORT ≥ 1.27).
    requirements : tuple of str
        What pip installs, ``onnxruntime-gpu==…`` first, with ``--no-deps``: the rest of ORT's
        dependencies come from the extension's wheels, and numpy must stay Blender's own.
    download_mb : int
        Approximate download size.
    notes : tuple of str
        What the user should know (driver version, Windows C++ runtime, restart).
    """

    python_tag: str
    platform: str
    target_dir: Path
    onnxruntime_version: str
    cuda_major: int
    requirements: tuple[str, ...]
    download_mb: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def python_version(self) -> str:
        """``"3.11"`` for ``"cp311"``."""
        return f"{self.python_tag[2]}.{self.python_tag[3:]}"

    def command(self, python: str | None = None) -> list[str]:
        """The pip command as an argument list; ``python`` defaults to ``python3.11`` etc.

        ``--platform``/``--python-version`` make pip pick wheels for the Blender it installs for,
        whatever Python runs pip (they need ``--only-binary=:all:`` and ``--no-deps``).
        """
        return [python or f"python{self.python_version}", "-m", "pip", "install", "--target",
                str(self.target_dir), "--upgrade", "--no-deps", "--only-binary=:all:",
                "--python-version", self.python_version, "--implementation", "cp",
                "--platform", PLATFORMS[self.platform], *self.requirements]

    def command_text(self, python: str | None = None) -> str:
        """:meth:`command` as one line to paste into a shell."""
        parts = self.command(python)
        if self.platform == "windows-x64":  # cmd.exe and PowerShell: double quotes; < > | & are special
            return " ".join(f'"{p}"' if set(p) & set(' <>|&^') else p for p in parts)
        return shlex.join(parts)

    def describe(self) -> list[str]:
        """The plan as lines for a dialog or a console: what, how big, where, which Python."""
        return [f"onnxruntime-gpu {self.onnxruntime_version} with the CUDA {self.cuda_major} and cuDNN 9 "
                f"wheels ({len(self.requirements) - 1} nvidia-* packages)",
                f"download about {self.download_mb / 1000:.1f} GB",
                f"into {self.target_dir}",
                f"for Python {self.python_version} ({self.python_tag}, {self.platform})",
                *self.notes]


def install_plan(python_tag: str, platform: str, target_dir, onnxruntime_version: str | None = None) -> Plan:
    """The plan to install ``onnxruntime-gpu`` and its CUDA libraries as pip wheels into ``target_dir``.

    Parameters
    ----------
    python_tag : {"cp311", "cp313"}
        Blender 4.5/5.0 run CPython 3.11, 5.1/5.2 CPython 3.13.
    platform : {"linux-x64", "windows-x64"}
        onnxruntime-gpu has no macOS or ARM wheels (macOS runs CoreML through the bundled ORT).
    target_dir : str or Path
        The folder pip installs into (Blender's user ``modules`` folder in the add-on).
    onnxruntime_version : str, optional
        Default: 1.26.0 on Linux, 1.20.2 on Windows (:data:`DEFAULT_VERSION`).
    """
    if python_tag not in PYTHON_TAGS:
        raise InputError(f"the GPU runtime is planned for Blender's Pythons {', '.join(PYTHON_TAGS)}, "
                         f"not {python_tag!r}")
    if platform not in PLATFORMS:
        hint = (" On macOS choose 'CoreML' (built into the bundled ONNX Runtime)" if platform.startswith("macos")
                else " DirectML (Windows) needs onnxruntime-directml instead" if platform == "windows-arm64" else "")
        raise InputError(f"onnxruntime-gpu has wheels for {', '.join(PLATFORMS)} only, not {platform!r}.{hint}")
    version = onnxruntime_version or DEFAULT_VERSION[platform]
    if version in MISSING_VERSIONS:
        raise InputError(MISSING_VERSIONS[version])
    numbers = _version_tuple(version)
    if numbers < (1, 20):
        raise InputError(f"onnxruntime-gpu {version} is too old: 1.20 or newer is needed (CUDA 12, cuDNN 9)")
    cuda_major = 13 if numbers >= (1, 27) else 12
    wheels, pins = (CUDA13_WHEELS, CUDA13_PINS) if cuda_major == 13 else (CUDA12_WHEELS, CUDA12_PINS)
    requirements = (f"onnxruntime-gpu=={version}", *(f"{name}{pins.get(name, '')}" for name in wheels))
    notes = [f"needs an NVIDIA GPU with a driver for CUDA {cuda_major} "
             f"({'≥ 580' if cuda_major == 13 else '≥ 525.60 on Linux, ≥ 527.41 on Windows'})",
             "restart Blender afterwards: ONNX Runtime is imported once per session"]
    if platform == "windows-x64" and numbers >= (1, 21):
        notes.append("Windows: ONNX Runtime ≥ 1.21 may fail to load with the C++ runtime Blender ships "
                     "(\"DLL initialization routine failed\"); 1.20.2 (or 1.20.0) avoids it. There is no 1.20.1")
    if numbers < (1, 21):
        notes.append(f"onnxruntime-gpu {version} has no preload_dlls(): " + (
            "the add-on adds the nvidia wheels' bin folders to the DLL search path itself"
            if platform == "windows-x64" else
            "on Linux its CUDA libraries must be on LD_LIBRARY_PATH; 1.21 or newer finds the wheels' own"))
    return Plan(python_tag, platform, Path(target_dir), version, cuda_major, requirements,
                ORT_GPU_MB + sum(wheels.values()), tuple(notes))


def current_target() -> tuple[str, str]:
    """This interpreter's Python tag and platform name (``("cp311", "linux-x64")``)."""
    import platform as _platform

    machine = _platform.machine().lower()
    arch = "arm64" if machine in ("arm64", "aarch64") else "x64"
    system = {"win32": "windows", "darwin": "macos"}.get(sys.platform, "linux")
    return f"cp{sys.version_info.major}{sys.version_info.minor}", f"{system}-{arch}"


def run_install(plan: Plan, python: str | None = None, log=print) -> Path:
    """Run the plan's pip command in a subprocess (this downloads ~2 GB) and record what it added.

    Returns the manifest path. Raises :class:`InputError` with pip's last lines when pip fails.
    """
    plan.target_dir.mkdir(parents=True, exist_ok=True)
    before = set(os.listdir(plan.target_dir))
    command = plan.command(python or sys.executable)
    log("running: " + plan.command_text(python or sys.executable))
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise InputError(f"pip could not install the GPU runtime (exit {done.returncode}): {tail}")
    added = sorted(set(os.listdir(plan.target_dir)) - before - {MANIFEST})
    manifest = plan.target_dir / MANIFEST
    previous = json.loads(manifest.read_text())["entries"] if manifest.is_file() else []
    manifest.write_text(json.dumps({"onnxruntime_gpu": plan.onnxruntime_version, "python": plan.python_tag,
                                    "entries": sorted(set(previous) | set(added))}, indent=1))
    return manifest


def nvidia_library_dirs(target_dir) -> list[Path]:
    """The nvidia wheels' library folders under ``target_dir`` (``nvidia/*/bin`` on Windows, ``lib`` else)."""
    root = Path(target_dir) / "nvidia"
    return sorted(p for p in root.glob("*/bin")) + sorted(p for p in root.glob("*/lib")) if root.is_dir() else []


def load_gpu_runtime(target_dir) -> str:
    """Make the GPU runtime in ``target_dir`` usable in this process; returns a one-line status.

    On Windows the nvidia wheels' ``bin`` folders are added to the DLL search path
    (``os.add_dll_directory``, Python docs "os"); then ``onnxruntime.preload_dlls()`` loads CUDA,
    cuDNN and the MSVC runtime from the nvidia wheels where ORT ≥ 1.21 has it (CUDA EP docs,
    "Preload DLLs"). A runtime that cannot be imported raises :class:`InputError` that says so; the
    bundled CPU ONNX Runtime keeps working (:func:`.providers.import_onnxruntime`).
    """
    target_dir = Path(target_dir)
    if not (target_dir / "onnxruntime").is_dir():
        raise InputError(f"no GPU runtime in {target_dir}: install it first (Preferences → EIFER → "
                         "Install GPU Runtime, or the pip command in docs/install.md)")
    if sys.platform == "win32":
        for folder in nvidia_library_dirs(target_dir):
            if folder.name == "bin":
                os.add_dll_directory(str(folder))
    ort = import_onnxruntime()
    origin = Path(ort.__file__).resolve().parent
    if origin.parent != target_dir.resolve():
        from .providers import import_note

        why = import_note() or f"ONNX Runtime was imported from {origin.parent} before it; restart Blender"
        raise InputError(f"the GPU runtime in {target_dir} is not in use: {why}. The CPU runtime keeps working")
    if hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls()
        except Exception as exc:  # a missing library: the provider note will name it at load time
            return f"onnxruntime {ort.__version__} from {target_dir}; preload_dlls failed ({exc})"
    usable = CUDA in ort.get_available_providers()
    return (f"onnxruntime {ort.__version__} from {target_dir}: "
            + ("CUDA provider available" if usable else "no CUDA provider (a CPU-only build?)"))


_prepared: set[Path] = set()


def prepare_for_cuda() -> str:
    """Once per process, before a CUDA session: when the imported ONNX Runtime is a GPU runtime
    install (nvidia wheels beside it), make their libraries findable (:func:`load_gpu_runtime`).

    Returns the status line, or "" when there was nothing to do; never raises.
    """
    try:
        folder = Path(import_onnxruntime().__file__).resolve().parent.parent
    except Exception:
        return ""
    if folder in _prepared or not (folder / "nvidia").is_dir():
        return ""
    _prepared.add(folder)
    try:
        return load_gpu_runtime(folder)
    except InputError as exc:
        return str(exc)


@dataclass(frozen=True)
class UninstallPlan:
    """What uninstalling removes: ``paths`` inside ``target_dir`` (what the install recorded)."""

    target_dir: Path
    paths: tuple[Path, ...]
    size_mb: int

    def describe(self) -> list[str]:
        if not self.paths:
            return [f"no GPU runtime installed in {self.target_dir}"]
        return [f"remove {len(self.paths)} folders (about {self.size_mb / 1000:.1f} GB) from {self.target_dir}",
                "Windows: restart Blender first if the GPU runtime ran in this session (loaded DLLs cannot be "
                "deleted)"]


_PATTERNS = ("onnxruntime", "onnxruntime_gpu-*.dist-info", "nvidia", "nvidia_*.dist-info")


def uninstall_plan(target_dir) -> UninstallPlan:
    """What :func:`uninstall` would remove: the entries the install recorded in its manifest, or
    (without one) onnxruntime-gpu's and the nvidia wheels' folders."""
    target_dir = Path(target_dir)
    manifest = target_dir / MANIFEST
    if manifest.is_file():
        names = json.loads(manifest.read_text()).get("entries", [])
        paths = [target_dir / n for n in names if (target_dir / n).exists()] + [manifest]
    elif (target_dir / "onnxruntime").is_dir() and list(target_dir.glob("onnxruntime_gpu-*.dist-info")):
        paths = sorted({p for pattern in _PATTERNS for p in target_dir.glob(pattern)})
    else:
        paths = []
    size = sum(f.stat().st_size for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
    return UninstallPlan(target_dir, tuple(paths), round(size / 1e6))


def uninstall(plan: UninstallPlan) -> int:
    """Remove what ``plan`` lists; returns how many entries were removed."""
    import shutil

    for path in plan.paths:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    return len(plan.paths)
