import datasets
import pytest

from hskd.common.glue import TASKS, Examples, GlueFormatError, get_task, load_split, read_tsv
from hskd.common.synthetic import STSB_SLOTS, write_synthetic_tsv

# Label order of GLUE / `datasets` ("nyu-mll/glue"): position = label id.
EXPECTED_LABELS = {
    "CoLA": ("unacceptable", "acceptable"),
    "SST-2": ("negative", "positive"),
    "MRPC": ("not_equivalent", "equivalent"),
    "STS-B": (),
    "QQP": ("not_duplicate", "duplicate"),
    "MNLI": ("entailment", "neutral", "contradiction"),
    "QNLI": ("entailment", "not_entailment"),
    "RTE": ("entailment", "not_entailment"),
}


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_label_order_of_every_task_matches_glue():
    assert {name: spec.labels for name, spec in TASKS.items()} == EXPECTED_LABELS


def test_task_specs():
    assert get_task("STS-B").is_regression and get_task("STS-B").num_labels == 1
    assert get_task("MNLI").num_labels == 3 and not get_task("MNLI").is_regression
    assert (get_task("MNLI").dev_split, get_task("MNLI").dev_file) == (
        "validation_matched",
        "dev_matched.tsv",
    )
    assert (get_task("RTE").dev_split, get_task("RTE").dev_file) == ("validation", "dev.tsv")
    assert {name: spec.metric for name, spec in TASKS.items()} == {
        "CoLA": "matthews_corrcoef",
        "SST-2": "accuracy",
        "MRPC": "f1",
        "STS-B": "pearson",
        "QQP": "f1",
        "MNLI": "accuracy",
        "QNLI": "accuracy",
        "RTE": "accuracy",
    }
    assert get_task("SST-2").hub_config == "sst2"


def test_get_task_unknown():
    with pytest.raises(ValueError, match=r"unknown task 'sst2' \(expected one of CoLA, SST-2"):
        get_task("sst2")


def test_read_cola_headerless(tmp_path):
    path = write(
        tmp_path / "train.tsv",
        [
            "gj04\t1\t\tThe sailors rode the breeze.",
            'gj04\t0\t*\tHe said "hi the.',  # stray quote must stay literal
        ],
    )
    examples = read_tsv("CoLA", path)
    assert examples == Examples(["The sailors rode the breeze.", 'He said "hi the.'], None, [1, 0])
    assert len(examples) == 2


def test_read_header_task_uses_column_names(tmp_path):
    path = write(
        tmp_path / "dev.tsv",
        [
            "index\tsentence1\tsentence2\tlabel",
            "0\tA man sleeps.\tSomeone sleeps.\tentailment",
            "",  # blank lines are skipped
            "1\tIt rains.\tIt is dry.\tnot_entailment",
        ],
    )
    assert read_tsv("RTE", path) == Examples(
        ["A man sleeps.", "It rains."], ["Someone sleeps.", "It is dry."], [0, 1]
    )


def test_read_mrpc_with_byte_order_mark(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text(
        "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t11\t12\tHe left.\tHe went away.\n",
        encoding="utf-8",
    )
    assert read_tsv("MRPC", path) == Examples(["He left."], ["He went away."], [1])


def test_read_stsb_float_labels(tmp_path):
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    path = write(
        tmp_path / "dev.tsv",
        [
            header,
            "0\tmain\tf\t2012\t1\tnone\tnone\tA cat.\tA kitten.\t4.25",
            "1\tmain\tf\t2012\t2\tn\tn\tX.\tY.\t0",
        ],
    )
    examples = read_tsv("STS-B", path)
    assert examples.labels == [4.25, 0.0]
    assert all(isinstance(label, float) for label in examples.labels)
    assert examples.text_b == ["A kitten.", "Y."]


@pytest.mark.parametrize(
    ("task", "lines", "message"),
    [
        (
            "RTE",
            ["index\tsentence1\tsentence2\tlabel", "0\ta\tb\tentailment", "1\ta\tb\tyes"],
            ":3: unknown label 'yes'",
        ),
        ("SST-2", ["sentence\tlabel", "fine\t1", "bad\t2"], ":3: unknown label '2'"),
        ("CoLA", ["gj04\t1\t\tok.", "gj04\t1\tok."], ":2: expected 4 columns, got 3"),
        ("SST-2", ["sentence\tlabel", "  \t1"], ":2: empty text"),
        ("STS-B", ["sentence1\tsentence2\tscore", "a\tb\thigh"], ":2: non-numeric score 'high'"),
        ("RTE", ["index\tpremise\thypothesis\tlabel"], ":1: header lacks column(s) 'sentence1', 'sentence2'"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, task, lines, message):
    path = write(tmp_path / "bad.tsv", lines)
    with pytest.raises(GlueFormatError) as info:
        read_tsv(task, path)
    assert str(info.value).startswith(f"{path}{message}")
    assert isinstance(info.value, ValueError)


def test_read_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        read_tsv("RTE", tmp_path / "nope.tsv")


def test_load_split_from_glue_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("GLUE_DIR", raising=False)
    (tmp_path / "MNLI").mkdir()
    header = "index\tpromptID\tpairID\tgenre\tsentence1\tsentence2\tlabel1\tlabel2\tgold_label"
    write(
        tmp_path / "MNLI" / "dev_matched.tsv", [header, "0\t1\t2\tfiction\tP.\tH.\tneutral\tneutral\tneutral"]
    )
    assert load_split("MNLI", "dev", str(tmp_path)) == Examples(["P."], ["H."], [1])
    with pytest.raises(FileNotFoundError, match="train.tsv"):
        load_split("MNLI", "train", tmp_path)
    with pytest.raises(ValueError, match="unknown split 'test'"):
        load_split("MNLI", "test", tmp_path)


def test_load_split_uses_env_glue_dir(tmp_path, monkeypatch):
    write_synthetic_tsv(tmp_path, n_train=3, n_dev=2)
    monkeypatch.setenv("GLUE_DIR", str(tmp_path))
    assert len(load_split("SST-2", "dev", None)) == 2


def test_load_split_hub_unreachable(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub")

    monkeypatch.delenv("GLUE_DIR", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(RuntimeError, match="hub is unreachable") as info:
        load_split("RTE", "train", None)
    assert "`glue_dir`" in str(info.value) and "GLUE_DIR" in str(info.value)


def test_load_split_from_hub_converts_columns(monkeypatch):
    calls = []

    def fake_load(path, name, split):
        calls.append((path, name, split))
        return {"premise": ["P."], "hypothesis": ["H."], "label": [2], "idx": [0]}

    monkeypatch.delenv("GLUE_DIR", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    assert load_split("MNLI", "dev", None) == Examples(["P."], ["H."], [2])
    assert calls == [("nyu-mll/glue", "mnli", "validation_matched")]


def test_smoke_tsv_is_deterministic_balanced_and_learnable(tmp_path):
    first = write_synthetic_tsv(tmp_path / "a", n_train=400, n_dev=100, seed=3)
    second = write_synthetic_tsv(tmp_path / "b", n_train=400, n_dev=100, seed=3)
    other = write_synthetic_tsv(tmp_path / "c", n_train=400, n_dev=100, seed=4)
    assert first == tmp_path / "a" / "SST-2"
    for name in ("train.tsv", "dev.tsv"):
        assert (first / name).read_text() == (second / name).read_text()
        assert (first / name).read_text() != (other / name).read_text()
    assert (first / "train.tsv").read_text().startswith("sentence\tlabel\n")

    train = read_tsv("SST-2", first / "train.tsv")
    assert len(train) == 400 and len(read_tsv("SST-2", first / "dev.tsv")) == 100
    assert 0.4 <= sum(train.labels) / len(train) <= 0.6
    lengths = {len(text.split()) for text in train.text_a}
    assert min(lengths) >= 4 and max(lengths) <= 12 and len(lengths) > 5
    positive = {"good", "great", "excellent"}
    for text, label in zip(train.text_a, train.labels, strict=True):
        if positive & set(text.split()):
            assert label == 1


@pytest.mark.parametrize("task", sorted(TASKS))
def test_synthetic_data_of_every_task_reads_back_in_its_layout_with_a_learnable_label(tmp_path, task):
    spec = get_task(task)
    folder = write_synthetic_tsv(tmp_path, task=task, n_train=600, n_dev=60, seed=1)
    assert (folder / "train.tsv").read_text() == write_synthetic_tsv(tmp_path / "again", task, 600, 60, 1).joinpath(
        "train.tsv").read_text()  # fmt: skip
    train, dev = load_split(task, "train", tmp_path), load_split(task, "dev", tmp_path)
    assert len(train) == 600 and len(dev) == 60
    assert (train.text_b is None) == (len(spec.text_columns) == 1)
    if task == "MNLI":
        assert len(read_tsv("MNLI", folder / "dev_mismatched.tsv")) == 60
    cues = [{"good", "great", "excellent", "wonderful", "happy", "love"}, {"bad", "awful", "terrible", "boring", "sad",
            "hate"}, {"maybe", "perhaps", "possibly", "often", "sometimes", "usually"}]  # fmt: skip
    cue_text = train.text_a if train.text_b is None else train.text_b
    for text, label in zip(cue_text, train.labels, strict=True):
        words = text.split()
        if spec.is_regression:  # the score counts the positive cues among the slots
            assert sum(word in cues[0] for word in words) == label and 0 <= label <= STSB_SLOTS
        elif train.text_b is None:  # one cue word: positive for label 1 (SST-2's sentiment, as the smoke data)
            assert (cues[0] if label else cues[1]) & set(words)
        else:  # the hypothesis's cue word names the class
            assert cues[label] & set(words)
    if not spec.is_regression:  # every class present, none dominating
        shares = [train.labels.count(label) / len(train) for label in range(spec.num_labels)]
        assert min(shares) > 0.5 / spec.num_labels


def test_synthetic_pairs_reach_past_128_tokens_and_sentences_stay_short(tmp_path):
    from hskd.models.hub import load_tokenizer

    tokenizer = load_tokenizer("minilm-l6")
    write_synthetic_tsv(tmp_path, "QNLI", 2000, 10, seed=0)
    write_synthetic_tsv(tmp_path, "SST-2", 2000, 10, seed=0)
    pairs, single = load_split("QNLI", "train", tmp_path), load_split("SST-2", "train", tmp_path)
    pair_lengths = [len(ids) for ids in tokenizer(pairs.text_a, pairs.text_b)["input_ids"]]
    single_lengths = [len(ids) for ids in tokenizer(single.text_a)["input_ids"]]
    assert max(pair_lengths) > 128 and sorted(pair_lengths)[len(pair_lengths) // 2] < 64
    assert max(single_lengths) <= 16
