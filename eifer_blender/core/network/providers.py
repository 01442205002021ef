"""Which ONNX Runtime execution provider runs a network, and an honest note when it is not the one asked for.

In: a preference (``"auto"``, ``"cpu"``, ``"cuda"``, ``"directml"``, ``"coreml"``) and what the
installed ONNX Runtime offers; out: the provider list for ``InferenceSession`` and, after the
session is made, the provider that actually runs (``session.get_providers()[0]``) with a sentence
saying why a GPU that was asked for is not used.

ONNX Runtime drops an unusable provider *silently* and runs on the CPU (see the "Execution
Providers" and "CUDA Execution Provider → Requirements" pages of onnxruntime.ai/docs), so the
session is always asked afterwards what it runs on.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import importlib.util
import io
import re
import sys
import warnings
from pathlib import Path

from ..errors import InputError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
DIRECTML = "DmlExecutionProvider"
COREML = "CoreMLExecutionProvider"
PROVIDER_PREFERENCES = ("auto", "cpu", "cuda", "directml", "coreml")
PROVIDER_OF = {"cpu": CPU, "cuda": CUDA, "directml": DIRECTML, "coreml": COREML}
LABEL = {CPU: "CPU", CUDA: "CUDA", DIRECTML: "DirectML", COREML: "CoreML"}
# the package that brings each GPU provider (onnxruntime.ai/docs/install)
PACKAGE_OF = {CUDA: "onnxruntime-gpu", DIRECTML: "onnxruntime-directml", COREML: "onnxruntime (macOS wheel)"}
# the system each provider runs on (DirectML: Windows 10+; CoreML: macOS/iOS)
SYSTEM_OF = {DIRECTML: ("win32", "Windows"), COREML: ("darwin", "macOS")}
DISTRIBUTIONS = ("onnxruntime-gpu", "onnxruntime-directml", "onnxruntime")

# what ORT's CUDA errors say when the driver is older than the CUDA runtime it was built with
# (CUDA runtime API: cudaErrorInsufficientDriver = 35)
_DRIVER_TOO_OLD = re.compile(r"insufficient ?driver|driver version is insufficient|CUDA failure 35\b|"
                             r"cudaErrorInsufficientDriver", re.IGNORECASE)
_LIBRARY = re.compile(r"\b(lib[\w+-]+(?:\.[\w-]+)*\.so(?:\.\d+)*|[\w+-]+(?:\.[\w-]+)*\.dll)\b", re.IGNORECASE)
_EP_ERROR = re.compile(r"EP Error (.*?) when using \[", re.DOTALL)

_import_note = ""  # set when a broken onnxruntime (a GPU runtime folder) was skipped at import


def import_onnxruntime():
    """``onnxruntime``, skipping a copy that cannot be imported (a broken GPU runtime install).

    Blender's user ``modules`` folder comes before the extension's wheels on ``sys.path``, so a
    GPU runtime installed there that fails to import would otherwise stop every network. When the
    first copy fails, the next ``onnxruntime`` package on ``sys.path`` (the bundled one: the CPU
    build, the DirectML build on Windows) is loaded instead, without editing ``sys.path``, and
    :func:`import_note` says what happened.
    """
    global _import_note
    if "onnxruntime" in sys.modules:
        return sys.modules["onnxruntime"]
    try:
        return importlib.import_module("onnxruntime")
    except Exception as exc:  # ImportError, OSError (a DLL) or anything the package's __init__ raises
        first_error = exc
    broken = _package_folder("onnxruntime", sys.path)
    _forget("onnxruntime")
    later = [p for p in sys.path if broken is None or Path(p or ".").resolve() != broken.parent.resolve()]
    spec = importlib.machinery.PathFinder.find_spec("onnxruntime", later)
    if spec is None or spec.loader is None:
        raise InputError(f"ONNX Runtime cannot be imported ({type(first_error).__name__}: {first_error})"
                         + (f" from {broken}" if broken else "") + "; no other copy is installed. "
                         "Uninstall the GPU runtime (Preferences → EIFER → Uninstall GPU Runtime) "
                         "or reinstall the extension") from first_error
    module = importlib.util.module_from_spec(spec)
    sys.modules["onnxruntime"] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        _forget("onnxruntime")
        raise
    _import_note = (f"the ONNX Runtime in {broken.parent if broken else '?'} cannot be imported "
                    f"({type(first_error).__name__}: {first_error}); using the one in "
                    f"{Path(spec.origin).parent.parent} instead. Uninstall or reinstall the GPU runtime")
    return module


def import_note() -> str:
    """Why the first ``onnxruntime`` on ``sys.path`` was skipped ("" when it was not)."""
    return _import_note


def _package_folder(name: str, path) -> Path | None:
    spec = importlib.machinery.PathFinder.find_spec(name, list(path))
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _forget(name: str) -> None:
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def installed_runtime() -> str:
    """The installed ONNX Runtime distribution and version, e.g. ``"onnxruntime 1.20.1"``."""
    from importlib import metadata

    for name in DISTRIBUTIONS:
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    ort = import_onnxruntime()
    return f"onnxruntime {getattr(ort, '__version__', '?')}"


def choose_providers(preference: str = "auto", available=None, platform: str | None = None) -> list[str]:
    """Execution providers to ask ONNX Runtime for, best first, always ending with the CPU.

    Parameters
    ----------
    preference : {"auto", "cpu", "cuda", "directml", "coreml"}
        ``"auto"``: CUDA when ``CUDAExecutionProvider`` is available, else DirectML on Windows when
        ``DmlExecutionProvider`` is, else the CPU. CoreML is used only when asked for: the shipped
        windowed MLPs are tiny and nobody has measured CoreML faster than ORT's CPU kernels
        for them (this project had no Mac to measure on). A named GPU provider is asked for even
        when it is not available, so :func:`fallback_note` can say why it did not run.
    available : list of str, optional
        ``onnxruntime.get_available_providers()`` when not given.
    platform : str, optional
        ``sys.platform`` when not given.
    """
    preference = str(preference).lower()
    if preference not in PROVIDER_PREFERENCES:
        raise InputError(f"provider preference must be one of {PROVIDER_PREFERENCES}, got {preference!r}")
    if preference == "cpu":
        return [CPU]
    if preference != "auto":
        return [PROVIDER_OF[preference], CPU]
    available = list(import_onnxruntime().get_available_providers() if available is None else available)
    platform = platform or sys.platform
    if CUDA in available:
        return [CUDA, CPU]
    if DIRECTML in available and platform == "win32":
        return [DIRECTML, CPU]
    return [CPU]


def fallback_note(preference: str, wanted: list[str], used: str, available, error: str = "",
                  installed: str = "", platform: str | None = None) -> str:
    """The sentence that says why the GPU provider in ``wanted`` did not run ("" when it did).

    Parameters
    ----------
    preference : str
        What the user chose (``"auto"`` and ``"cpu"`` never warn about a GPU they did not ask for,
        except when auto's GPU was tried and failed).
    wanted : list of str
        What was asked for (:func:`choose_providers`).
    used : str
        ``session.get_providers()[0]``.
    available : list of str
        ``onnxruntime.get_available_providers()``.
    error : str
        ONNX Runtime's error text while starting the provider (its "EP Error" fallback message or
        what loading the provider library said), when there was one.
    installed : str
        The installed ONNX Runtime, e.g. ``"onnxruntime 1.20.1"``.
    platform : str, optional
        ``sys.platform`` when not given.
    """
    target = wanted[0]
    if target == CPU or used == target:
        return ""
    label, platform = LABEL.get(target, target), platform or sys.platform
    system = SYSTEM_OF.get(target)
    if system and platform != system[0]:
        return f"{label} was asked for, but it runs on {system[1]} only; running on CPU"
    if target not in available:
        if target == DIRECTML:  # the Windows zip bundles onnxruntime-directml: another copy came first
            return (f"{label} was asked for, but the ONNX Runtime in use ({installed or 'onnxruntime'}) has no "
                    f"{target}: it is a build without it, found before the onnxruntime-directml that the Windows "
                    "zip bundles (to use that one, Preferences → EIFER → Uninstall GPU Runtime; outside the "
                    "extension, install onnxruntime-directml); running on CPU")
        return (f"{label} was asked for, but the installed ONNX Runtime ({installed or 'onnxruntime'}) has no "
                f"{target}: it is a build without it. Install {PACKAGE_OF.get(target, 'a build with it')}"
                + (" (Preferences → EIFER → Install GPU Runtime)" if target == CUDA else "")
                + "; running on CPU")
    error = " ".join(str(error).split())
    if _DRIVER_TOO_OLD.search(error):
        return (f"{label} is installed but the NVIDIA driver is too old for its CUDA version (CUDA 12 needs "
                f"driver ≥ 525.60 on Linux, ≥ 527.41 on Windows, CUDA 13 needs ≥ 580); update the driver or install "
                f"an onnxruntime-gpu built for an older CUDA; running on CPU")
    libraries = sorted(set(_LIBRARY.findall(error)) - {"onnxruntime_pybind11_state.dll"})
    libraries = [n for n in libraries if "onnxruntime_providers" not in n] or libraries
    if libraries:
        return (f"{label} is installed but could not start: {', '.join(libraries)} cannot be loaded (CUDA 12 "
                f"and cuDNN 9 libraries are needed, e.g. the nvidia-*-cu12 wheels the GPU runtime install "
                f"brings); running on CPU")
    why = f" (ONNX Runtime said: {error[:300]})" if error else " (missing CUDA/cuDNN libraries are the usual cause)"
    return f"{label} is installed but could not start{why}; running on CPU"


def probe_provider_library(provider: str) -> str:
    """Load the provider's shared library directly and return the loader's error ("" when it loads).

    The dynamic loader names the first missing dependency (``libcudnn.so.9: cannot open shared
    object file``) where ORT itself only logs it.
    """
    import ctypes

    stem = {CUDA: "onnxruntime_providers_cuda"}.get(provider)
    if stem is None:
        return ""
    try:
        capi = Path(import_onnxruntime().__file__).parent / "capi"
    except Exception:
        return ""
    for name in (f"lib{stem}.so", f"{stem}.dll"):
        if (capi / name).is_file():
            try:
                ctypes.CDLL(str(capi / name))
            except OSError as exc:
                return str(exc)
            return ""
    return ""


def start_session(path, preference: str = "auto", options=None):
    """An ``InferenceSession`` for ``path`` on the preferred provider, and the note on what ran.

    Returns
    -------
    session : onnxruntime.InferenceSession
    note : str
        "" when the preferred provider (or, for ``"auto"``, the CPU as expected) runs; otherwise
        why not (:func:`fallback_note`), plus any note from :func:`import_onnxruntime`.
    """
    ort = import_onnxruntime()
    wanted = choose_providers(preference)
    options = options if options is not None else ort.SessionOptions()
    if DIRECTML in wanted:
        # the DirectML EP supports neither memory patterns nor parallel execution
        # (onnxruntime.ai/docs/execution-providers/DirectML-ExecutionProvider.html)
        options.enable_mem_pattern = False
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), warnings.catch_warnings():
        # ORT prints its "EP Error … Falling back" to stdout and warns about providers it lacks;
        # both become the note
        warnings.filterwarnings("ignore", message="Specified provider")
        session = ort.InferenceSession(str(path), sess_options=options, providers=wanted)
    used = session.get_providers()[0]
    note = ""
    if used != wanted[0]:
        found = _EP_ERROR.search(printed.getvalue())
        error = found.group(1) if found else printed.getvalue().strip()
        available = ort.get_available_providers()
        if not error and wanted[0] in available:
            error = probe_provider_library(wanted[0])
        note = fallback_note(preference, wanted, used, available, error, installed_runtime())
    elif printed.getvalue().strip():
        sys.stdout.write(printed.getvalue())
    return session, "; ".join(n for n in (import_note(), note) if n)
