"""The protocol of a study: the choices where hskd departs from the paper's released code
(llyx97/Marginal-Utility-Diminishes), each settable on its own. ``paper`` makes every choice as that code
does; ``hskd`` is this pipeline's own. Choices that are strategies of their own (batch-level magnitude,
Bernoulli dims) are cell schemes instead, so both can sit in one study."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

RANKINGS = ("last_layer", "mapped_layer", "uniform_layer")
CHOICES = {
    # padding in the HSK loss: masked (batches padded per batch) | included (padded to max_seq_length, the
    # MSE covers every position of the selected tokens, padding too)
    "hsk_padding": ("masked", "included"),
    # attention_nosep: [SEP] ranked above padding | below it | among it, as a padding position whose score is 0
    # (the paper's: its [SEP] score is set to -10000, the value its mask adds to padding; needs token_score: score)
    "sep_rank": ("above_padding", "below_padding", "among_padding"),
    # which teacher attention ranks a distilled layer's tokens (`Cell.ranking_layers`): the last layer's for
    # every layer | the layer that produced the distilled hidden state (the paper's length sweeps,
    # --att_ttop12 False) | the layer a uniform map over every teacher layer gives the student layer (the
    # paper's joint runs, --att_ttop12 True); the last two keep one token set per distilled layer
    "token_ranking": RANKINGS,
    # the same choice for the joint cells (grid.joint): the paper ranked them otherwise than its sweeps
    "joint_token_ranking": RANKINGS,
    # the [CLS] row averaged over heads: of attention probabilities | of their logarithms, which rank real tokens
    # as the paper's pre-softmax scores do | of the pre-softmax scores themselves (the paper's), which also rank
    # the padding positions that k past a sentence's real tokens selects
    "token_score": ("probability", "logit", "score"),
    # stage-2 soft cross-entropy: summed over classes, mean over the batch | mean over batch x classes
    "soft_ce": ("per_example", "per_class"),
    # stage-2 target of a regression task (STS-B): the teacher's output | the gold label
    "regression_target": ("teacher", "gold"),
    # the student's optimiser in both stages: fused AdamW | the paper's BertAdam (no bias correction, eps 1e-6,
    # no decay of biases and LayerNorm, per-tensor gradient clipping at 1.0)
    "optimizer": ("adamw", "bertadam"),
    # the teacher of an online run (kd_mode online): in eval mode | in train mode, its dropout re-noising the
    # hidden states, the attention that ranks tokens and the magnitudes that pick width at every step (the
    # paper's teacher is never put in eval mode). Stores are always written by the eval-mode teacher.
    "teacher_mode": ("eval", "train"),
    # the students' classification head: the classifier on dropout(pooled) (transformers) | on relu(pooled), no
    # dropout (the paper's TinyBertForSequenceClassification and its pruned twin)
    "student_head": ("dropout", "relu"),
    # a narrower student's map to the teacher width: one Linear per distilled hidden state | one shared by all of
    # them (the paper's TinyBERT fit_dense); both drawn from the run's seed
    "projection": ("per_layer", "shared"),
}


@dataclass(frozen=True)
class Protocol:
    name: str
    hsk_padding: str
    sep_rank: str
    token_ranking: str
    joint_token_ranking: str
    token_score: str
    soft_ce: str
    regression_target: str
    optimizer: str
    teacher_mode: str
    student_head: str
    projection: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @property
    def pads_to_max(self) -> bool:
        """Whether HSK batches are padded to max_seq_length and padding counts in the loss."""
        return self.hsk_padding == "included"

    @property
    def per_layer_tokens(self) -> bool:
        return self.token_ranking != "last_layer"

    def for_cell(self, joint: bool) -> Protocol:
        """The choices a cell's store and runs use: a joint cell ranks its tokens by `joint_token_ranking`."""
        return replace(self, token_ranking=self.joint_token_ranking) if joint else self

    def store_metadata(self) -> dict[str, str]:
        """The choices that change a store's content: a store built under others is refused."""
        return {key: getattr(self, key) for key in STORE_CHOICES}


PRESETS = {
    "hskd": Protocol("hskd", "masked", "above_padding", "last_layer", "last_layer", "probability", "per_example",
                     "teacher", "adamw", "eval", "dropout", "per_layer"),
    "paper": Protocol("paper", "included", "among_padding", "mapped_layer", "uniform_layer", "score", "per_class",
                      "gold", "bertadam", "train", "relu", "shared"),
}
STORE_CHOICES = ("hsk_padding", "sep_rank", "token_ranking", "token_score")


def resolve(name: str, overrides: dict[str, str | None] | None = None) -> Protocol:
    """The preset `name` with each non-null override applied; ValueError naming the bad key."""
    if name not in PRESETS:
        raise ValueError(f"protocol: {name!r} is not one of {', '.join(PRESETS)}")
    protocol = PRESETS[name]
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in CHOICES:
            raise ValueError(f"protocol_choices.{key}: unknown choice (known: {', '.join(CHOICES)})")
        if value not in CHOICES[key]:
            raise ValueError(f"protocol_choices.{key}: {value!r} is not one of {', '.join(CHOICES[key])}")
        protocol = replace(protocol, **{key: value})
    if protocol.sep_rank == "among_padding" and protocol.token_score != "score":
        raise ValueError("protocol_choices.sep_rank: among_padding ranks [SEP] by a pre-softmax score of 0, so it "
                         f"needs token_score: score (this protocol has {protocol.token_score!r})")  # fmt: skip
    return protocol


def from_dict(values: dict[str, str]) -> Protocol:
    """A Protocol from `as_dict` output (how the CLI receives it), every choice checked."""
    unknown = sorted(set(values) - {"name", *CHOICES})
    if unknown or set(CHOICES) - set(values):
        raise ValueError(f"protocol needs exactly the keys name, {', '.join(CHOICES)}; got {sorted(values)}")
    return resolve(values["name"], {key: value for key, value in values.items() if key != "name"})


@dataclass(frozen=True)
class RecipeValue:
    """A config value the paper's code fixes: `paper` is the value, or a function of the study giving it."""

    key: str  # dotted config key, read from a task's view of the study
    paper: Any  # the value, or a function of (a task's view of the study, the task) giving it
    source: str  # where the paper's code (llyx97/Marginal-Utility-Diminishes at 0c40107) sets it

    def paper_value(self, study, task: str) -> Any:
        return self.paper(study, task) if callable(self.paper) else self.paper


PAPER_COMMIT = "0c40107"
SHORT_TASKS = {"CoLA": 64, "SST-2": 64}  # main.py's default_params max_seq_length where it is not 128
# The config values of the paper's recipe (its README's commands and main.py). Under `protocol: paper` a study's
# effective config should hold these for every task (`recipe_rows` says where it does not).
PAPER_RECIPE = (
    RecipeValue("precision", "fp32", "main.py: no autocast and no .half(): fp32 throughout"),
    RecipeValue("freeze_word_embeddings", False, "main.py L1044: the optimiser gets every named parameter"),
    RecipeValue("data.max_seq_length", lambda study, task: SHORT_TASKS.get(task, 128),
                "main.py L876-884, L952-953: 64 for CoLA and SST-2 (over the README's --max_seq_length 128), else 128"),
    RecipeValue("data.heldout_size", 0, "main.py L980-1005: trains on the whole training set"),
    RecipeValue("data.group_by_length", False, "main.py L986, L997: RandomSampler batches"),
    RecipeValue("width_loss", "paper", "main.py L1161-1188: teacher states times the mask, MSE over whole vectors"),
    RecipeValue("teacher.epochs", 5, "README bert_ft.py command: --num_train_epochs 5.0"),
    RecipeValue("teacher.lr", 2e-5, "README bert_ft.py command: --learning_rate 2e-5"),
    RecipeValue("teacher.batch_size", 32, "README bert_ft.py command: --per_gpu_train_batch_size 32"),
    RecipeValue("teacher.warmup_ratio", 0.0, "hg_transformers/training_args.py L78: warmup_steps 0"),
    RecipeValue("teacher.weight_decay", 0.0, "hg_transformers/training_args.py L69: weight_decay 0.0"),
    RecipeValue("teacher.max_grad_norm", 1.0, "hg_transformers/trainer.py L480-483, training_args.py L71: 1.0"),
    RecipeValue("teacher.eval_every", 50, "README: --logging_steps 50 --evaluate_during_training; "
                                          "hg_transformers/trainer.py L496-522 saves the best dev checkpoint"),
    RecipeValue("stage1.lr", 5e-5, "README --repr_distill commands: --learning_rate 5e-5"),
    RecipeValue("stage1.batch_size", 32, "README --repr_distill commands: --train_batch_size 32"),
    RecipeValue("stage1.schedule", "constant", "main.py L1057-1058: schedule 'none' without --pred_distill"),
    RecipeValue("stage1.weight_decay", 0.01, "main.py L1053: BertAdam weight decay 0.01"),
    RecipeValue("stage2.lr", 2e-5, "README prediction distillation: --learning_rate 2e-5"),
    RecipeValue("stage2.batch_size", 32, "README prediction distillation: --train_batch_size 32"),
    RecipeValue("stage2.epochs", 5, "README prediction distillation: --num_train_epochs 5"),
    RecipeValue("stage2.warmup_ratio", 0.0, "README prediction distillation: --warmup_proportion 0."),
    RecipeValue("stage2.weight_decay", 0.01, "main.py L1053: BertAdam weight decay 0.01"),
    RecipeValue("stage2.schedule", "linear", "main.py L1056: warmup_linear"),
    RecipeValue("stage2.temperature", 1.0, "main.py L843: --temperature default 1"),
    RecipeValue("stage2.eval_every", 50, "README: --eval_step 50; main.py L1221 evaluates every eval_step steps"),
    RecipeValue("baselines.prediction_only.epochs", "stage1",
                "README: the prediction-only run gets --num_train_epochs of HSK distillation"),
    RecipeValue("baselines.prediction_only.batch_size", 64, "README prediction distillation: --train_batch_size 64"),
    RecipeValue("baselines.prediction_only.warmup_ratio", 0.1,
                "README prediction-only command: no --warmup_proportion, main.py L781 default 0.1"),
    RecipeValue("report.value", "dev_best", "main.py L1256-1268: the best dev checkpoint is kept"),
    RecipeValue("baselines.select_on", "dev", "main.py L1256-1268: chosen on dev"),
    RecipeValue("baselines.lrs", lambda study, task: [study.stage2.lr], "README: every arm at --learning_rate 2e-5"),
    RecipeValue("grid.lr_search", False, "README: one learning rate per command, no search"),
)


# Where hskd computes otherwise than the paper's code with no switch to make it the same (docs/paper-protocol.md
# has a row for each, with why).
NOT_REPRODUCED = (
    ("teacher mode in cached runs", "the paper has none: its teacher runs live with dropout on (main.py L1016-1017); "
                                    "a store holds the eval-mode teacher's targets (teacher_mode applies online)"),
    ("teacher head during distillation", "classifier(relu(pooled)), no dropout (transformer/modeling.py L1460)"),
    ("TinyBERT projection weights", "its fit_dense comes with the general-distillation checkpoint if that holds one; "
                                    "hskd draws the projection from the run's seed"),
    ("last incomplete batch", "skipped (main.py L1090-1091); hskd trains on it"),
    ("evaluation steps", "at (global_step + 1) % eval_step == 0 (main.py L1221); hskd at multiples of eval_every"),
    ("teacher's sequence length", "bert_ft.py fine-tunes at 128 tokens for every task; hskd's teacher reads the "
                                  "task's data at data.max_seq_length (64 for CoLA and SST-2 under paper.yaml)"),
    ("ROSITA importance", "|sum of |grad| x final weight| over one more training epoch with dropout and updates, heads "
                          "by attention-output columns only, neurons without biases (bert_ft.py --compute_taylor, "
                          "pruning.py L60-72); hskd: sum of |w x grad| over importance_batches, eval mode, q/k/v too"),
    ("HSK targets", "fp32 from the live teacher; hskd stores hold fp16 values (median relative error 0.017%, "
                    "docs/paper-protocol.md)"),
    ("static width masks", "drawn at step 0, applied from step 1; hskd applies them from the first step"),
    ("stage-1 checkpoint", "stage 2 starts from the last --eval_step 200 save of stage 1 (main.py L1251-1252), up "
                           "to 199 steps before its end; hskd from the last step"),
    ("best-checkpoint start", "best_dev_acc starts at 0.0 (main.py L1075): a run never above 0 saves nothing; "
                              "hskd's dev_best is the largest dev value"),
    ("selection metric", "STS-B by (pearson + spearman) / 2 (main.py L588-595); hskd by pearson (the paper's four "
                         "tasks select alike)"),
)


def config_value(study, key: str) -> Any:
    """A dotted key's value in a typed study (`stage2.eval_every` -> study.stage2.eval_every)."""
    value = study
    for part in key.split("."):
        value = getattr(value, part)
    return value


def recipe_rows(study, task: str) -> list[tuple[str, Any, Any, str]]:
    """(choice or key, the study's value for `task`, the paper's, the paper's source) of every protocol choice
    and recipe value."""
    task_study = study.for_task(task)
    rows = [(f"protocol.{key}", getattr(task_study.protocol, key), getattr(PRESETS["paper"], key),
             "docs/paper-protocol.md") for key in CHOICES]  # fmt: skip
    rows += [(entry.key, config_value(task_study, entry.key), entry.paper_value(task_study, task), entry.source)
             for entry in PAPER_RECIPE]  # fmt: skip
    return rows


def format_recipe(study) -> str:
    """`hskd protocol`: per task, every choice and recipe value, marked where it departs from the paper's code."""
    lines = [f"# each task's protocol against the paper's code (llyx97/Marginal-Utility-Diminishes at {PAPER_COMMIT});"
             " '!=' marks a departure"]  # fmt: skip
    for task in study.tasks:
        rows = recipe_rows(study, task)
        departures = sum(value != paper for _, value, paper, _ in rows)
        lines.append(f"\n[{task}] {departures} of {len(rows)} differ from the paper's code")
        for key, value, paper, source in rows:
            mark = "==" if value == paper else "!="
            lines.append(f"{key} = {value!r} {mark} paper {paper!r}  # {source}")
    lines.append("\n# not reproduced, whatever the config (no switch; docs/paper-protocol.md says why)")
    lines += [f"{what}: {how}" for what, how in NOT_REPRODUCED]
    return "\n".join(lines) + "\n"
