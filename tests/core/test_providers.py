"""Provider choice, honest fallback notes and the opt-in GPU runtime plan, all on the CPU.

ONNX Runtime's available providers are controlled by monkeypatching (this machine has no GPU);
nothing downloads.
"""
import subprocess
import sys
import textwrap
from pathlib import Path

import onnxruntime as ort
import pytest

from eifer_blender.core.errors import InputError
from eifer_blender.core.network import (
    gpu_runtime,
    load_model,
    providers,
    shipped_model_path,
)
from eifer_blender.core.network.model import PROVIDER_PREFERENCES, choose_providers
from eifer_blender.core.network.providers import (
    COREML,
    CPU,
    CUDA,
    DIRECTML,
    fallback_note,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = shipped_model_path("emg2arkit")


@pytest.fixture
def available(monkeypatch):
    """Set what ``onnxruntime.get_available_providers()`` answers."""
    def set_available(*names):
        monkeypatch.setattr(ort, "get_available_providers", lambda: [*names, CPU])
    return set_available


class _Reports:
    """A real CPU session that reports ``first`` as the provider it runs on."""

    def __init__(self, session, first):
        self._session, self._first = session, first

    def get_providers(self):
        return [self._first, CPU]

    def __getattr__(self, name):
        return getattr(self._session, name)


@pytest.mark.parametrize("names,platform,expected", [
    ((), "linux", [CPU]),
    ((CUDA,), "linux", [CUDA, CPU]),
    ((CUDA, DIRECTML), "win32", [CUDA, CPU]),
    ((DIRECTML,), "win32", [DIRECTML, CPU]),
    ((DIRECTML,), "linux", [CPU]),
    ((COREML,), "darwin", [CPU]),  # CoreML only when asked for: never measured faster here
])
def test_auto_prefers_cuda_then_directml_on_windows_then_cpu(names, platform, expected):
    assert providers.choose_providers("auto", [*names, CPU], platform) == expected


def test_every_preference_names_its_provider_first_and_ends_with_cpu():
    assert PROVIDER_PREFERENCES == ("auto", "cpu", "cuda", "directml", "coreml")
    assert choose_providers("cpu") == [CPU]
    assert choose_providers("CUDA") == [CUDA, CPU]
    assert choose_providers("directml") == [DIRECTML, CPU]
    assert choose_providers("coreml") == [COREML, CPU]
    with pytest.raises(InputError, match="provider preference must be one of"):
        choose_providers("rocm")


def test_cpu_and_auto_on_a_cpu_build_run_on_cpu_without_a_note():
    for preference in ("cpu", "auto"):
        model = load_model(MODEL, providers=preference)
        assert model.provider == CPU == model.session.get_providers()[0]
        assert model.provider_note == ""


@pytest.mark.skipif(CUDA in ort.get_available_providers(), reason="this machine has the CUDA provider")
def test_cuda_asked_of_a_cpu_only_onnxruntime_says_the_package_is_missing():
    model = load_model(MODEL, providers="cuda")
    assert model.provider == CPU
    note = model.provider_note
    assert "CUDA was asked for" in note and "no CUDAExecutionProvider" in note
    assert "onnxruntime-gpu" in note and "Install GPU Runtime" in note and note.endswith("running on CPU")
    assert ort.__version__ in note  # names the installed ONNX Runtime


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="checks the other systems' providers")
def test_directml_and_coreml_elsewhere_say_which_system_they_need():
    assert "Windows only" in load_model(MODEL, providers="directml").provider_note
    assert "macOS only" in load_model(MODEL, providers="coreml").provider_note


def test_package_missing_notes_on_their_own_systems():
    note = fallback_note("directml", [DIRECTML, CPU], CPU, [CPU], installed="onnxruntime 1.20.1", platform="win32")
    assert "onnxruntime 1.20.1" in note and "onnxruntime-directml" in note
    note = fallback_note("coreml", [COREML, CPU], CPU, [CPU], installed="onnxruntime 1.20.1", platform="darwin")
    assert "has no CoreMLExecutionProvider" in note


def test_listed_but_failing_cuda_names_the_missing_libraries(available, monkeypatch):
    available(CUDA)
    monkeypatch.setattr(providers, "probe_provider_library", lambda provider: (
        "libcudnn.so.9: cannot open shared object file: No such file or directory"))
    model = load_model(MODEL, providers="auto")  # auto tries CUDA because it is listed
    assert model.provider == CPU
    assert "CUDA is installed but could not start: libcudnn.so.9 cannot be loaded" in model.provider_note
    monkeypatch.setattr(providers, "probe_provider_library", lambda provider: "")
    note = load_model(MODEL, providers="cuda").provider_note
    assert "could not start" in note and "missing CUDA/cuDNN libraries" in note


def test_ort_ep_error_text_is_read_for_libraries_and_old_drivers(available, monkeypatch):
    available(CUDA)
    real = ort.InferenceSession
    message = {"text": ""}

    def printing_session(*args, **kwargs):
        print(f"EP Error {message['text']} when using ['CUDAExecutionProvider', 'CPUExecutionProvider']")
        print("Falling back to ['CPUExecutionProvider'] and retrying.")
        return real(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", printing_session)
    message["text"] = ("/onnxruntime/core/providers/cuda/cuda_call.cc:123 CUDA failure 35: CUDA driver version "
                       "is insufficient for CUDA runtime version ; GPU=0")
    note = load_model(MODEL, providers="cuda").provider_note
    assert "NVIDIA driver is too old" in note and "≥ 580" in note
    message["text"] = ("Error loading \"onnxruntime_providers_cuda.dll\" which depends on \"cublasLt64_12.dll\" "
                       "which is missing. (Error 126)")
    note = load_model(MODEL, providers="cuda").provider_note
    assert "cublasLt64_12.dll cannot be loaded" in note and "onnxruntime_providers_cuda.dll" not in note


def test_the_reported_provider_is_the_sessions_first(available, monkeypatch):
    available(CUDA)
    real = ort.InferenceSession
    monkeypatch.setattr(ort, "InferenceSession", lambda *a, **k: _Reports(real(*a, **k), CUDA))
    model = load_model(MODEL, providers="auto")
    assert model.provider == CUDA and model.provider_note == ""
    monkeypatch.setattr(ort, "InferenceSession", lambda *a, **k: _Reports(real(*a, **k), DIRECTML))
    assert load_model(MODEL, providers="directml").provider == DIRECTML


# ------------------------------------------------------------------------------ GPU runtime plan
@pytest.mark.parametrize("python_tag", ["cp311", "cp313"])
def test_linux_plan_is_onnxruntime_gpu_with_cuda12_wheels(tmp_path, python_tag):
    plan = gpu_runtime.install_plan(python_tag, "linux-x64", tmp_path / "modules")
    assert plan.onnxruntime_version == "1.26.0" and plan.cuda_major == 12
    assert plan.requirements[0] == "onnxruntime-gpu==1.26.0"
    names = {r.split(">")[0].split("=")[0] for r in plan.requirements[1:]}
    assert {"nvidia-cuda-runtime-cu12", "nvidia-cudnn-cu12", "nvidia-cublas-cu12", "nvidia-cufft-cu12",
            "nvidia-curand-cu12", "nvidia-cuda-nvrtc-cu12", "nvidia-nvjitlink-cu12"} == names
    assert 1800 <= plan.download_mb <= 2300
    version = f"3.{python_tag[3:]}"
    assert plan.command() == [f"python{version}", "-m", "pip", "install", "--target", str(tmp_path / "modules"),
                              "--upgrade", "--no-deps", "--only-binary=:all:", "--python-version", version,
                              "--implementation", "cp", "--platform", "manylinux_2_28_x86_64", *plan.requirements]
    text = plan.command_text("/opt/blender/python/bin/python3.11")
    assert text.startswith("/opt/blender/python/bin/python3.11 -m pip install --target ")
    assert "'nvidia-cudnn-cu12>=9,<10'" in text  # quoted for the shell
    lines = plan.describe()
    assert "onnxruntime-gpu 1.26.0" in lines[0] and "GB" in lines[1] and str(tmp_path) in lines[2]
    assert f"Python {version}" in lines[3]


def test_windows_plan_pins_1_20_2_and_new_versions_warn(tmp_path):
    plan = gpu_runtime.install_plan("cp311", "windows-x64", tmp_path)
    assert plan.onnxruntime_version == "1.20.2" and "--platform win_amd64" in plan.command_text()
    assert any("preload_dlls" in n for n in plan.notes)
    newer = gpu_runtime.install_plan("cp313", "windows-x64", tmp_path, "1.24.4")
    assert any("DLL initialization routine failed" in n and "1.20.2" in n for n in newer.notes)
    assert gpu_runtime.install_plan("cp311", "windows-x64", tmp_path, "1.20.0").cuda_major == 12


def test_cuda13_from_1_27_and_refusals(tmp_path):
    plan = gpu_runtime.install_plan("cp313", "linux-x64", tmp_path, "1.31.1")
    assert plan.cuda_major == 13 and "nvidia-cudnn-cu13>=9,<10" in plan.requirements
    assert any("≥ 580" in n for n in plan.notes)
    with pytest.raises(InputError, match="1.20.1 does not exist.*1.20.0 and 1.20.2"):
        gpu_runtime.install_plan("cp311", "linux-x64", tmp_path, "1.20.1")
    with pytest.raises(InputError, match="CoreML"):
        gpu_runtime.install_plan("cp311", "macos-arm64", tmp_path)
    with pytest.raises(InputError, match="cp311, cp313"):
        gpu_runtime.install_plan("cp312", "linux-x64", tmp_path)
    with pytest.raises(InputError, match="too old"):
        gpu_runtime.install_plan("cp311", "linux-x64", tmp_path, "1.19.2")


def test_uninstall_plan_removes_what_the_install_recorded(tmp_path):
    assert gpu_runtime.uninstall_plan(tmp_path).paths == ()
    for name in ("onnxruntime", "onnxruntime_gpu-1.26.0.dist-info", "nvidia/cudnn/lib", "other_addon"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "nvidia/cudnn/lib/libcudnn.so.9").write_bytes(b"x" * 1000)
    plan = gpu_runtime.uninstall_plan(tmp_path)
    assert {p.name for p in plan.paths} == {"onnxruntime", "onnxruntime_gpu-1.26.0.dist-info", "nvidia"}
    (tmp_path / gpu_runtime.MANIFEST).write_text('{"entries": ["onnxruntime", "nvidia"]}')
    plan = gpu_runtime.uninstall_plan(tmp_path)
    assert {p.name for p in plan.paths} == {"onnxruntime", "nvidia", gpu_runtime.MANIFEST}
    assert gpu_runtime.uninstall(plan) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnxruntime_gpu-1.26.0.dist-info", "other_addon"]


def test_load_gpu_runtime_without_one_says_install_first(tmp_path):
    with pytest.raises(InputError, match="no GPU runtime in .*install it first"):
        gpu_runtime.load_gpu_runtime(tmp_path)


def test_a_broken_gpu_runtime_is_named_and_the_cpu_path_still_works(tmp_path):
    """A target folder whose onnxruntime cannot be imported, first on sys.path as Blender's user
    modules folder is: loading it says so, and the shipped model still runs on the CPU."""
    broken = tmp_path / "modules"
    (broken / "onnxruntime").mkdir(parents=True)
    (broken / "onnxruntime" / "__init__.py").write_text(
        'raise ImportError("libcudart.so.12: cannot open shared object file")\n')
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(broken)!r})
        sys.path.insert(1, {str(REPO_ROOT)!r})
        from eifer_blender.core.errors import InputError
        from eifer_blender.core.network import gpu_runtime, load_model, shipped_model_path
        try:
            gpu_runtime.load_gpu_runtime({str(broken)!r})
        except InputError as exc:
            print("MESSAGE", exc)
        model = load_model(shipped_model_path("emg2arkit"), providers="cpu")
        print("PROVIDER", model.provider)
        print("NOTE", model.provider_note)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "MESSAGE the GPU runtime in" in out and "libcudart.so.12" in out and "CPU runtime keeps working" in out
    assert "PROVIDER CPUExecutionProvider" in out
    assert f"NOTE the ONNX Runtime in {broken} cannot be imported" in out


def _fake_runtime(tmp_path, version="1.26.0", preload=True):
    """A GPU runtime folder (onnxruntime + nvidia wheels) and a stand-in for its onnxruntime module."""
    from types import SimpleNamespace

    target = tmp_path / "modules"
    for folder in ("onnxruntime", "nvidia/cudnn/bin", "nvidia/cublas/bin"):
        (target / folder).mkdir(parents=True)
    (target / "onnxruntime" / "__init__.py").write_text("")
    calls = []
    module = SimpleNamespace(__file__=str(target / "onnxruntime" / "__init__.py"), __version__=version,
                             get_available_providers=lambda: [CUDA, CPU])
    if preload:
        module.preload_dlls = lambda: calls.append("preload_dlls")
    return target, module, calls


def test_load_gpu_runtime_preloads_the_nvidia_libraries(tmp_path, monkeypatch):
    target, module, calls = _fake_runtime(tmp_path)
    monkeypatch.setattr(gpu_runtime, "import_onnxruntime", lambda: module)
    assert gpu_runtime.load_gpu_runtime(target) == f"onnxruntime 1.26.0 from {target}: CUDA provider available"
    assert calls == ["preload_dlls"]
    monkeypatch.setattr(gpu_runtime, "_prepared", set())
    assert "CUDA provider available" in gpu_runtime.prepare_for_cuda()
    assert gpu_runtime.prepare_for_cuda() == ""  # once per process
    assert calls == ["preload_dlls"] * 2


def test_load_gpu_runtime_on_windows_adds_the_nvidia_bin_folders(tmp_path, monkeypatch):
    from types import SimpleNamespace

    target, module, calls = _fake_runtime(tmp_path, "1.20.2", preload=False)
    added = []
    monkeypatch.setattr(gpu_runtime, "import_onnxruntime", lambda: module)
    monkeypatch.setattr(gpu_runtime, "sys", SimpleNamespace(platform="win32"))
    monkeypatch.setattr(gpu_runtime, "os", SimpleNamespace(add_dll_directory=added.append))
    assert "CUDA provider available" in gpu_runtime.load_gpu_runtime(target)
    assert sorted(Path(p).parent.name for p in added) == ["cublas", "cudnn"] and calls == []


def test_a_runtime_shadowed_by_an_earlier_import_says_restart(tmp_path, monkeypatch):
    target, module, calls = _fake_runtime(tmp_path)
    monkeypatch.setattr(gpu_runtime, "import_onnxruntime", lambda: ort)  # the CPU one came first
    with pytest.raises(InputError, match="is not in use: ONNX Runtime was imported from .* restart Blender"):
        gpu_runtime.load_gpu_runtime(target)


def test_windows_command_quotes_what_cmd_would_redirect(tmp_path):
    text = gpu_runtime.install_plan("cp313", "windows-x64", tmp_path / "Blender Foundation").command_text()
    assert '"nvidia-cudnn-cu12>=9,<10"' in text and f'"{tmp_path / "Blender Foundation"}"' in text


def test_the_command_line_offers_every_provider_preference():
    from eifer_blender.cli._args import PROVIDER_CHOICES

    assert PROVIDER_CHOICES == PROVIDER_PREFERENCES
