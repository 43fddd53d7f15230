"""Tokenized GLUE splits: building them once, storing them as safetensors, and batching them."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from hskd.common import glue
from hskd.common.io import save_tensors_atomic

SPLITS = ("train", "heldout", "dev")


def split_indices(num_train: int, heldout_size: int, train_subset: int | None, seed: int) -> tuple:
    """Disjoint (heldout, train) index tensors drawn from one seeded permutation of the training set.

    The held-out slice is taken first, so it is the same whatever `train_subset` is."""
    if heldout_size >= num_train:
        raise ValueError(f"data.heldout_size: {heldout_size} >= the {num_train} training examples")
    order = torch.randperm(num_train, generator=torch.Generator().manual_seed(seed))
    heldout = order[:heldout_size]
    rest = order[heldout_size:]
    train = rest[:train_subset] if train_subset else rest
    return heldout.sort().values, train.sort().values


def untruncated_lengths(examples: glue.Examples, tokenizer) -> list[int]:
    """Token count of every example before truncation (special tokens included)."""
    if not examples.labels:
        return []
    encoded = tokenizer(examples.text_a, examples.text_b, truncation=False, return_attention_mask=False,
                        return_token_type_ids=False, return_length=True, verbose=False)  # fmt: skip
    return list(encoded["length"])


def tokenize(examples: glue.Examples, tokenizer, max_seq_length: int, task: str) -> dict[str, torch.Tensor]:
    label_dtype = torch.float32 if glue.get_task(task).is_regression else torch.int64
    if not examples.labels:  # an empty split (data.heldout_size 0); the tokenizer refuses an empty batch
        empty = torch.zeros(0, max_seq_length)
        return {"input_ids": empty.to(torch.int32), "token_type_ids": empty.to(torch.uint8),
                "lengths": torch.zeros(0, dtype=torch.int32), "labels": torch.zeros(0, dtype=label_dtype)}
    encoded = tokenizer(
        examples.text_a,
        examples.text_b,
        truncation=True,
        max_length=max_seq_length,
        padding="max_length",
        return_tensors="pt",
    )
    return {
        "input_ids": encoded["input_ids"].to(torch.int32),
        "token_type_ids": encoded["token_type_ids"].to(torch.uint8),
        "lengths": encoded["attention_mask"].sum(1).to(torch.int32),
        "labels": torch.tensor(examples.labels, dtype=label_dtype),
    }


def _select(examples: glue.Examples, index: torch.Tensor) -> glue.Examples:
    picks = index.tolist()
    return glue.Examples(
        text_a=[examples.text_a[i] for i in picks],
        text_b=None if examples.text_b is None else [examples.text_b[i] for i in picks],
        labels=[examples.labels[i] for i in picks],
    )


def prepare_splits(
    task: str,
    glue_dir: str | None,
    tokenizer,
    max_seq_length: int,
    train_subset: int | None,
    heldout_size: int,
    seed: int,
    out_paths: dict[str, str],
) -> None:
    """Read, split and tokenize a task; write `train`, `heldout` and `dev` to `out_paths[split]`."""
    train_all = glue.load_split(task, "train", glue_dir)
    heldout_index, train_index = split_indices(len(train_all), heldout_size, train_subset, seed)
    splits = {
        "train": _select(train_all, train_index),
        "heldout": _select(train_all, heldout_index),
        "dev": glue.load_split(task, "dev", glue_dir),
    }
    available = len(train_all) - heldout_size
    if train_subset and train_subset > available:
        print(f"warning: data.train_subset {train_subset} exceeds the {available} training examples left after "
              f"the held-out slice of {task}: all {available} are used", file=sys.stderr)
    for split, examples in splits.items():
        lengths = untruncated_lengths(examples, tokenizer)
        facts = {"examples": len(examples.labels), "truncated": sum(n > max_seq_length for n in lengths)}
        if split == "train":
            facts |= {"available": available, "requested": train_subset or available}
        if facts["truncated"]:
            print(f"{task} {split}: {truncation_note(facts, max_seq_length)}", file=sys.stderr)
        metadata = {"task": task, "split": split, "max_seq_length": str(max_seq_length), "facts": json.dumps(facts)}
        save_tensors_atomic(tokenize(examples, tokenizer, max_seq_length, task), out_paths[split], metadata)


def truncation_note(facts: dict, max_seq_length: int) -> str:
    """``12.5% of examples (51 of 408) are longer than 64 tokens and were truncated``."""
    share = facts["truncated"] / facts["examples"]
    return (f"{share:.1%} of examples ({facts['truncated']} of {facts['examples']}) are longer than "
            f"{max_seq_length} tokens and were truncated")


@dataclass
class TokenizedSplit:
    """A tokenized split held in memory (small: ids are int32 and padded to max_seq_length)."""

    input_ids: torch.Tensor
    token_type_ids: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor
    path: str = ""
    facts: dict = field(default_factory=dict)  # examples, truncated (and for train: available, requested)

    @classmethod
    def load(cls, path: str | Path) -> TokenizedSplit:
        tensors = load_file(str(path))
        with safe_open(str(path), "pt") as handle:
            facts = json.loads((handle.metadata() or {}).get("facts", "{}"))
        return cls(**{name: tensors[name] for name in ("input_ids", "token_type_ids", "lengths", "labels")},
                   path=str(path), facts=facts)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def max_seq_length(self) -> int:
        return self.input_ids.shape[1]

    def batch(self, index: torch.Tensor, pad_to: int | None = None) -> dict[str, torch.Tensor]:
        """Model inputs of the examples `index`, padded to the longest of them (or to `pad_to`)."""
        lengths = self.lengths[index]
        width = pad_to or int(lengths.max())
        positions = torch.arange(width)
        return {
            "input_ids": self.input_ids[index, :width].long(),
            "token_type_ids": self.token_type_ids[index, :width].long(),
            "attention_mask": (positions[None, :] < lengths[:, None]).long(),
            "labels": self.labels[index],
        }

    def batch_order(self, batch_size: int, seed: int, shuffle: bool, group_by_length: bool) -> list[torch.Tensor]:
        """Index batches of one epoch. Length grouping: shuffle, sort by length within chunks of 50
        batches, cut into batches, shuffle the batches (little padding, random order)."""
        count = len(self)
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(count, generator=generator) if shuffle else torch.arange(count)
        if group_by_length:
            chunk = batch_size * 50
            order = torch.cat([
                part[self.lengths[part].argsort(stable=True)] for part in order.split(chunk)
            ])
        batches = list(order.split(batch_size))
        if shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
        return batches
