"""Loading tokenizers and classifiers (names resolve through `hskd.common.model_names`)."""

from __future__ import annotations

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig, PreTrainedModel

from hskd.common.model_names import resolve_model_name


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
