"""Synthetic GLUE data of every task's shape, written as the classic TSVs and read by the same loader as real data.

Single sentences (SST-2, CoLA), sentence pairs with two classes (QNLI, RTE, MRPC, QQP) or three (MNLI, with both
dev files), and regression (STS-B). Each example hides its label in cue words a model can learn (so students can
beat the trivial baseline), among filler words that are whole tokens of the BERT uncased WordPiece vocabulary.
Pairs have a long-tailed length spread that reaches past 128 tokens, as real pair tasks do. Seeded: the same seed
writes the same files."""

from __future__ import annotations

import os
import random
from pathlib import Path

from hskd.common.glue import get_task

SYNTHETIC_TRAIN_SIZE, SYNTHETIC_DEV_SIZE = 512, 128  # examples per task (`hskd make-smoke-data` defaults)

# a class's cue words, by label id (the SST-2 and CoLA files use the first two)
_CUES = (
    ("good", "great", "excellent", "wonderful", "happy", "love"),
    ("bad", "awful", "terrible", "boring", "sad", "hate"),
    ("maybe", "perhaps", "possibly", "often", "sometimes", "usually"),
)
_FILLER_WORDS = (
    "the", "a", "an", "this", "that", "it", "is", "was", "and", "but", "of", "in", "on", "with", "for", "to",
    "at", "from", "by", "about", "movie", "film", "story", "actor", "scene", "music", "plot", "time", "day",
    "night", "man", "woman", "city", "house", "car", "dog", "cat", "book", "song", "water", "road", "world",
    "family", "friend", "school", "game", "door", "table", "window", "street", "very", "quite", "really",
    "just", "still", "also", "then", "there", "here", "some", "many", "every", "other", "new", "old", "long",
    "small", "big", "red", "blue", "green", "first", "last", "next", "walk", "run", "see", "look", "make",
    "take", "find", "tell", "show", "play", "watch", "read", "write", "open", "close",
)
STSB_SLOTS = 5  # an STS-B score is how many of these cue slots of the second sentence carry a positive cue


def _single_sentence(rng: random.Random) -> tuple[list[str], int]:
    """4-12 words with exactly one cue word; label 1 iff the cue is positive (the SST-2 smoke sentence)."""
    label = rng.randint(0, 1)
    words = rng.choices(_FILLER_WORDS, k=rng.randint(3, 11))
    cue = rng.choice(_CUES[0] if label else _CUES[1])
    words.insert(rng.randint(0, len(words)), cue)
    return [" ".join(words)], label


def _long_tailed_words(rng: random.Random, shortest: int, mean: int, longest: int) -> list[str]:
    return rng.choices(_FILLER_WORDS, k=min(longest, shortest + int(rng.expovariate(1 / mean))))


def _pair(rng: random.Random, classes: int) -> tuple[list[str], int]:
    """A premise of 5-100 filler words (mean 25) and a hypothesis of 3-40 whose one cue word names the class."""
    label = rng.randrange(classes)
    first, second = _long_tailed_words(rng, 5, 20, 100), _long_tailed_words(rng, 3, 8, 40)
    second.insert(rng.randint(0, len(second)), rng.choice(_CUES[label]))
    return [" ".join(first), " ".join(second)], label


def _scored_pair(rng: random.Random) -> tuple[list[str], float]:
    """A pair whose second sentence has STSB_SLOTS cue words; the score is how many of them are positive."""
    first, second = _long_tailed_words(rng, 5, 12, 60), _long_tailed_words(rng, 3, 6, 30)
    positives = rng.randint(0, STSB_SLOTS)
    for slot in range(STSB_SLOTS):
        second.insert(rng.randint(0, len(second)), rng.choice(_CUES[0] if slot < positives else _CUES[1]))
    return [" ".join(first), " ".join(second)], float(positives)


def synthetic_example(task: str, rng: random.Random) -> tuple[list[str], int | float]:
    """The texts and the label id (or score) of one synthetic example of `task`."""
    spec = get_task(task)
    if spec.is_regression:
        return _scored_pair(rng)
    if len(spec.text_columns) == 1:
        return _single_sentence(rng)
    return _pair(rng, spec.num_labels)


def _tsv_lines(task: str, examples: list[tuple[list[str], int | float]]) -> list[str]:
    """The rows of `task`'s classic TSV layout (a header unless the layout has none, as CoLA's)."""
    spec = get_task(task)
    layout = spec.tsv
    rows = []
    for texts, label in examples:
        value = label if spec.is_regression or layout.numeric_labels else spec.labels[label]
        fields = dict(zip(layout.text_columns, texts, strict=True)) | {layout.label_column: str(value)}
        rows.append("\t".join(fields.get(column, "syn") for column in (layout.columns or fields)))
    return rows if layout.columns else ["\t".join((*layout.text_columns, layout.label_column)), *rows]


def write_synthetic_tsv(
    out_dir: str | os.PathLike[str], task: str = "SST-2", n_train: int = SYNTHETIC_TRAIN_SIZE,
    n_dev: int = SYNTHETIC_DEV_SIZE, seed: int = 0,
) -> Path:  # fmt: skip
    """Write `task`'s synthetic train and dev TSVs (MNLI: both dev files) to ``out_dir/{task}/``; return that folder.
    Use ``out_dir`` as ``glue_dir``."""
    spec = get_task(task)
    rng = random.Random(seed)
    task_dir = Path(out_dir) / spec.name
    task_dir.mkdir(parents=True, exist_ok=True)
    dev_files = [spec.dev_file] + (["dev_mismatched.tsv"] if spec.name == "MNLI" else [])
    for name, n in (("train.tsv", n_train), *((dev_file, n_dev) for dev_file in dev_files)):
        lines = _tsv_lines(task, [synthetic_example(task, rng) for _ in range(n)])
        (task_dir / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return task_dir
