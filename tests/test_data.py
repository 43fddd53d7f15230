"""Data splits and batching: held-out slice disjoint and stable, batches deterministic and trimmed."""

from __future__ import annotations

import torch

from hskd.models.data import TokenizedSplit, split_indices


def test_heldout_is_disjoint_from_train_and_independent_of_subset():
    heldout, train = split_indices(100, 10, 30, seed=0)
    assert len(heldout) == 10 and len(train) == 30
    assert not set(heldout.tolist()) & set(train.tolist())
    heldout_all, train_all = split_indices(100, 10, None, seed=0)
    assert torch.equal(heldout, heldout_all)
    assert len(train_all) == 90 and set(train.tolist()) <= set(train_all.tolist())


def _split() -> TokenizedSplit:
    lengths = torch.tensor([3, 8, 5, 2, 7, 4])
    ids = torch.zeros(6, 8, dtype=torch.int32)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.arange(1, length + 1)
    return TokenizedSplit(ids, torch.zeros(6, 8, dtype=torch.uint8), lengths.int(), torch.tensor([0, 1, 0, 1, 0, 1]))


def test_batch_is_padded_to_its_longest_example():
    batch = _split().batch(torch.tensor([0, 2]))
    assert batch["input_ids"].shape == (2, 5)
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]


def test_batch_order_is_deterministic_and_covers_every_example():
    split = _split()
    first = split.batch_order(2, seed=3, shuffle=True, group_by_length=True)
    again = split.batch_order(2, seed=3, shuffle=True, group_by_length=True)
    assert [b.tolist() for b in first] == [b.tolist() for b in again]
    assert sorted(torch.cat(first).tolist()) == list(range(6))
    other = split.batch_order(2, seed=4, shuffle=True, group_by_length=True)
    assert [b.tolist() for b in first] != [b.tolist() for b in other]


def test_length_grouping_puts_similar_lengths_together():
    split = _split()
    batches = split.batch_order(2, seed=0, shuffle=True, group_by_length=True)
    spreads = [int(split.lengths[b].max() - split.lengths[b].min()) for b in batches]
    assert sorted(spreads) == [1, 1, 1]  # lengths 2,3 | 4,5 | 7,8


def test_prepared_splits_record_truncation_and_a_subset_larger_than_the_data(tmp_path, capsys):
    from hskd.common.synthetic import write_synthetic_tsv
    from hskd.models.data import SPLITS, prepare_splits
    from hskd.models.hub import load_tokenizer

    write_synthetic_tsv(tmp_path / "glue", n_train=40, n_dev=10, seed=0)
    tokenizer = load_tokenizer("minilm-l6")
    paths = {split: str(tmp_path / f"{split}.safetensors") for split in SPLITS}
    prepare_splits("SST-2", str(tmp_path / "glue"), tokenizer, 6, 100, 5, 0, paths)
    dev = TokenizedSplit.load(paths["dev"])
    texts = [line.split("\t")[0] for line in (tmp_path / "glue/SST-2/dev.tsv").read_text().splitlines()[1:]]
    longer = sum(len(tokenizer(text)["input_ids"]) > 6 for text in texts)
    assert dev.facts == {"examples": 10, "truncated": longer} and longer > 0
    assert TokenizedSplit.load(paths["train"]).facts | {"truncated": 0} == {
        "examples": 35, "truncated": 0, "available": 35, "requested": 100}
    err = capsys.readouterr().err
    assert "data.train_subset 100 exceeds the 35 training examples" in err
    assert f"of examples ({longer} of 10) are longer than 6 tokens" in err


def test_heldout_size_0_trains_on_every_example(tmp_path):
    # the paper's code trains on the whole split and selects on dev
    from hskd.common.synthetic import write_synthetic_tsv
    from hskd.models.data import SPLITS, prepare_splits
    from hskd.models.hub import load_tokenizer

    write_synthetic_tsv(tmp_path / "glue", n_train=40, n_dev=10, seed=0)
    paths = {split: str(tmp_path / f"{split}.safetensors") for split in SPLITS}
    prepare_splits("SST-2", str(tmp_path / "glue"), load_tokenizer("minilm-l6"), 16, None, 0, 0, paths)
    train, heldout = TokenizedSplit.load(paths["train"]), TokenizedSplit.load(paths["heldout"])
    assert len(train) == 40 and len(heldout) == 0
    assert split_indices(40, 0, None, seed=0)[1].tolist() == list(range(40))
