"""Where a study's config comes from. The layers are `config.yaml` (the Snakefile's own config file), each
`--configfile` in order, then the `--config` values, merged as Snakemake merges them (nested dicts key by key,
anything else replaced). A file with `standalone: true` states a whole study: the layers before it are dropped,
so no value calibrated for another study (config.yaml's CPU-scale `by_task` learning rates, say) flows into it.
Every leaf value keeps the name of the layer that set it; `effective_rows` adds the schema's defaults and the
`by_task` overlays, which is what `hskd config` prints."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIGFILE = "config.yaml"
COMMAND_LINE = "--config"
SCHEMA_DEFAULT = "schema default"
# Values that rerun no job when changed (they are Snakemake resources or thread counts, not params): a study's
# recorded config leaves them out, so changing them leaves it as it is.
RUN_ENVIRONMENT_KEYS = ("threads", "checkpoint_minutes", "teacher_margin", "resources", "tracking", "tracking_uri",
                        "log_every")


@dataclass(frozen=True)
class Layer:
    name: str  # a config file's path as given, or "--config"
    values: dict[str, Any]


def read_layers(configfiles: Iterable[str | os.PathLike], overrides: dict[str, Any] | None = None,
                default: str | None = DEFAULT_CONFIGFILE) -> list[Layer]:  # fmt: skip
    """The layers of a Snakemake call: `default` (when it exists), each config file, the `--config` values."""
    files = ([default] if default and Path(default).exists() else []) + [str(path) for path in configfiles]
    layers = [Layer(_shown(path), yaml.safe_load(Path(path).read_text()) or {}) for path in files]
    return layers + ([Layer(COMMAND_LINE, dict(overrides))] if overrides else [])


def _shown(path: str) -> str:
    """A path as short as it reads from here (Snakemake passes config files as absolute paths)."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def active_layers(layers: list[Layer]) -> list[Layer]:
    """The layers from the last standalone file on (all of them when none is standalone)."""
    starts = [index for index, layer in enumerate(layers) if layer.values.get("standalone")]
    return layers[starts[-1]:] if starts else layers


def merge(layers: list[Layer]) -> tuple[dict[str, Any], dict[str, str]]:
    """The config the active layers give, and for each dotted leaf key the layer that set it last."""
    config: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for layer in active_layers(layers):
        _merge_into(config, layer.values, layer.name, origins, prefix="")
    return config, origins


def _merge_into(config: dict, values: dict, origin: str, origins: dict[str, str], prefix: str) -> None:
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            _merge_into(config[key], value, origin, origins, prefix=f"{dotted}.")
            continue
        for stale in [name for name in origins if name == dotted or name.startswith(f"{dotted}.")]:
            del origins[stale]
        config[key] = copy.deepcopy(value)
        for leaf in _leaves(value, dotted):
            origins[leaf] = origin


def _leaves(value: Any, dotted: str) -> list[str]:
    if isinstance(value, dict) and value:
        return [leaf for key, item in value.items() for leaf in _leaves(item, f"{dotted}.{key}")]
    return [dotted]


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted leaf keys of a nested dict (an empty dict is a leaf)."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def effective_rows(validated: dict[str, Any], origins: dict[str, str],
                   leave_out: tuple[str, ...] = ()) -> list[tuple[str, str, Any, str]]:  # fmt: skip
    """(scope, key, value, origin) of every value a study's jobs see, `validated` being the merged config after
    schema validation (defaults filled in), but the top-level keys in `leave_out`. Scope "study" holds the
    study-wide values; for each task of `by_task`, scope "<task>" holds the values its overlay replaces, with the
    overlay's origin."""
    study = {key: value for key, value in validated.items() if key != "by_task" and key not in leave_out}
    rows = [("study", key, value, origins.get(key, SCHEMA_DEFAULT)) for key, value in flatten(study).items()]
    for task, sections in sorted((validated.get("by_task") or {}).items()):
        for key, value in flatten(sections).items():
            rows.append((task, key, value, origins.get(f"by_task.{task}.{key}", SCHEMA_DEFAULT)))
    return rows


def format_rows(rows: list[tuple[str, str, Any, str]], layers: list[Layer]) -> str:
    """The effective config as text: the layer chain, then `key = value  # origin` per line, per scope."""
    active = active_layers(layers)
    dropped = [layer.name for layer in layers if layer not in active]
    shown = {origin for _, _, _, origin in rows}  # a layer that sets only left-out keys is not named either
    names = [layer.name for layer in active if layer.name in shown or not rows]
    lines = [f"# layers, each over the one before: {' < '.join(names)}; keys none of them sets: "
             f"{SCHEMA_DEFAULT}s"]  # fmt: skip
    if dropped:
        lines.append(f"# not merged (a later file is standalone): {', '.join(dropped)}")
    width = max((len(f"{key} = {_text(value)}") for _, key, value, _ in rows), default=0)
    scope = None
    for row_scope, key, value, origin in rows:
        if row_scope != scope:
            scope = row_scope
            lines.append("" if scope == "study" else f"\n[by_task.{scope}: replaces these values for {scope}]")
        lines.append(f"{f'{key} = {_text(value)}':<{width}}  # {origin}")
    return "\n".join(lines).lstrip("\n") + "\n"


def _text(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("\n...").strip()
