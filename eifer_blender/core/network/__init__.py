"""Stage ③, network: envelopes ⇄ expression through an ONNX model (EIFER's EMG2Exp and Exp2EMG).

In: a track (muscle envelopes or expression parameters); out: the other kind of track at the same
frames. :mod:`.contract` is what every model file carries, :mod:`.model` loads one (provider
choice, checks) and runs it on whole tracks, :mod:`.windows` makes the frame windows it sees.
"""
from .contract import DIRECTIONS, SCHEMA, ModelMetadata
from .model import (
                    CPU,
                    CUDA,
                    SHIPPED_MODELS,
                    Model,
                    choose_providers,
                    load_model,
                    resolve_model,
                    shipped_model_path,
)

__all__ = ["DIRECTIONS", "SCHEMA", "ModelMetadata", "CPU", "CUDA", "SHIPPED_MODELS", "Model",
           "choose_providers", "load_model", "resolve_model", "shipped_model_path"]
