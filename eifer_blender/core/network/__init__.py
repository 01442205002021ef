"""Stage ③, network: envelopes ⇄ expression through an ONNX model (EIFER's EMG2Exp and Exp2EMG).

In: a track (muscle envelopes or expression parameters); out: the other kind of track at the same
frames. :mod:`.contract` is what every model file carries, :mod:`.model` loads one (provider
choice, checks) and runs it on whole tracks, :mod:`.windows` makes the frame windows it sees.
"""
# Resolved on first use (PEP 562), so that importing a light submodule (``network.gpu_runtime``, which the
# Blender preferences need at start-up) does not load the model code and, through it, scipy.signal: enabling
# the extension cost Blender ~0.8 s of start-up for that import alone.
_EXPORTS = {"DIRECTIONS": "contract", "SCHEMA": "contract", "ModelMetadata": "contract", "CPU": "model",
            "CUDA": "model", "SHIPPED_MODELS": "model", "Model": "model", "choose_providers": "model",
            "load_model": "model", "resolve_model": "model", "shipped_model_path": "model"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import contract, model  # (a literal import, so the layering test sees it)

    value = getattr(contract if _EXPORTS[name] == "contract" else model, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
