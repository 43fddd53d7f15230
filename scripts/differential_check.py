"""Differential check of `protocol: paper` against the paper's own code (llyx97/Marginal-Utility-Diminishes).

Reads the paper's `main.py` from a checkout at run time (nothing of it is copied into hskd), takes its
stage-1 lines verbatim (`uniform_t_layer`, `indexing_layers` and the body of `if args.repr_distill:` in
`main`: layer map, token selection, width mask, HSK loss) and runs them on seeded tensors of realistic
shape: a 12-layer, 768-wide teacher; batches padded to max_seq_length with lengths from 3 tokens up
(k larger than many sentences); single sentences at 64 tokens and sentence pairs at 128; pre-softmax
attention scores with the -10000 padding mask, as the paper's model returns them. hskd's paper protocol
runs on the same numbers (the same queries and keys through its teacher's attention function) and its own
code: `compress_pass` and `stage1_loss`, online (fp32 targets) and cached (written to and read back from an
HSK store). Per case it prints whether the two agree, or how many selected
(example, layer, token) positions and kept values differ and how far the losses are apart:

    python scripts/differential_check.py --paper-code /path/to/Marginal-Utility-Diminishes
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import torch

from hskd.common.io import write_text
from hskd.hsk.extract import StoreTarget, store_writer
from hskd.hsk.sources import compress_pass
from hskd.hsk.store import HSKStore
from hskd.models.teacher import (
    SCORES_ATTENTION,
    TeacherPass,
    attention_implementation,
    cls_attention_rows,
    cls_scores_attention,
    eager_attention_forward,
)
from hskd.planning.cells import parse_cell
from hskd.planning.protocol import PRESETS, Protocol, resolve
from hskd.training.distill import stage1_loss

CLS_ID, SEP_ID, PAD_ID = 101, 102, 0
TEACHER_LAYERS, HIDDEN, HEADS, BATCH = 12, 768, 12, 16
PAPER_FUNCTIONS = ("uniform_t_layer", "indexing_layers")
# hskd's name of each paper scheme (token_scheme / hidden_scheme); None: hskd has no such scheme
LENGTH_NAMES = {"none": None, "cls": "cls", "left_first": "left", "attention": "attention",
                "attention_no_sep": "attention_nosep"}  # fmt: skip
WIDTH_NAMES = {"none": None, "importance_mask_dynamic": "magnitude_batch", "uniform_mask": "uniform"}
# Differences the docs explain (docs/paper-protocol.md, "Differential check"), by length scheme; a row counts as
# explained only if each of hskd's token selections has, in the paper's scores, its selection's scores to within
# TIE. The paper adds -10000 to each head's padding scores before the mean over heads: float32 steps there are 2**-10,
# so its padding scores carry up to half a step of rounding each, and positions closer than two steps can swap.
TIE = 2 * 2.0**-10
TIES = ("near-ties only: padding positions whose scores differ by less than the rounding the paper's -10000 "
        "mask adds in float32 (2 steps of 2**-10), which the two codes order differently")  # fmt: skip
EXPLAINED = {"attention": TIES, "attention_no_sep": TIES}


@dataclass(frozen=True)
class Case:
    """One paper command's stage-1 knowledge: `--layer_scheme t_top<map_top> --keep_layers`, `--token_scheme
    --keep_tokens`, `--hidden_scheme --keep_hidden`, `--att_ttop12`, for a student of `student_layers`."""

    student_layers: int
    map_top: int
    keep_layers: int | None
    token_scheme: str = "none"
    keep_tokens: int | None = None
    hidden_scheme: str = "none"
    keep_hidden: float | None = None
    att_ttop12: bool = False

    @property
    def cell(self) -> str:
        depth = f"top{self.map_top}-{self.keep_layers}" if self.keep_layers else f"all-top{self.map_top}"
        scheme, width = LENGTH_NAMES[self.token_scheme], WIDTH_NAMES[self.hidden_scheme]
        length = "all" if scheme is None else f"{scheme}-{self.keep_tokens}"
        return f"depth={depth}/length={length}/width={'all' if width is None else f'{width}-{self.keep_hidden}'}"

    @property
    def flags(self) -> str:
        """The paper's command-line flags for this case (those left at their defaults omitted)."""
        flags = [f"--layer_scheme t_top{self.map_top}", f"--att_ttop12 {self.att_ttop12}"]
        if self.keep_layers:
            flags.append(f"--keep_layers {self.keep_layers}")
        if self.token_scheme != "none":
            flags.append(f"--token_scheme {self.token_scheme} --keep_tokens {self.keep_tokens}")
        if self.hidden_scheme != "none":
            flags.append(f"--hidden_scheme {self.hidden_scheme} --keep_hidden {self.keep_hidden}")
        return " ".join(flags)

    @property
    def joint(self) -> bool:
        return self.att_ttop12


@dataclass
class Inputs:
    """One padded batch: what the paper's model returns and what transformers returns for it."""

    input_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor  # [B, T]
    teacher_reps: list[torch.Tensor]  # Lt + 1 x [B, T, D]
    queries: list[torch.Tensor]  # Lt x [B, H, T, D / H]
    keys: list[torch.Tensor]  # Lt x [B, H, T, D / H]

    @property
    def max_seq_length(self) -> int:
        return self.input_ids.shape[1]

    def paper_scores(self) -> list[torch.Tensor]:
        """Lt x [B, H, T, T]: what the paper's BertSelfAttention returns, scores + -10000 at padding keys."""
        padding = (1 - self.attention_mask)[:, None, None, :].float() * -10000.0
        scale = self.queries[0].shape[-1] ** -0.5
        pairs = zip(self.queries, self.keys, strict=True)
        return [query @ key.transpose(2, 3) * scale + padding for query, key in pairs]

    def hskd_attentions(self, token_score: str) -> tuple[torch.Tensor, ...]:
        """What hskd's teacher returns as attentions under `token_score`: its own attention function's second
        output, with transformers' padding mask (the dtype's minimum)."""
        implementation = attention_implementation(True, token_score)
        function = cls_scores_attention if implementation == SCORES_ATTENTION else eager_attention_forward
        mask = (1 - self.attention_mask)[:, None, None, :].float() * torch.finfo(torch.float32).min
        module = torch.nn.Module().eval()
        pairs = zip(self.queries, self.keys, strict=True)
        return tuple(function(module, query, key, key, mask)[1] for query, key in pairs)


def paper_code(checkout: Path) -> tuple[str, dict, str]:
    """The paper's stage-1 source (dedented body of `if args.repr_distill:` in `main`), its helper functions
    compiled, and where the lines are ("main.py L<first>-L<last>")."""
    source = (checkout / "main.py").read_text()
    tree = ast.parse(source)
    helpers: dict = {"re": re}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in PAPER_FUNCTIONS:
            exec(compile(ast.Module([node], []), "main.py", "exec"), helpers)
    main = next((node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main"), tree)
    block = next((node for node in ast.walk(main)
                  if isinstance(node, ast.If) and ast.unparse(node.test) == "args.repr_distill"), None)  # fmt: skip
    missing = [name for name in PAPER_FUNCTIONS if name not in helpers]
    missing += [] if block else ["if args.repr_distill:"]
    if missing:
        raise ValueError(f"{checkout / 'main.py'}: no {', '.join(missing)} (not the paper's code, or restructured)")
    first, last = block.body[0].lineno, block.end_lineno
    code = textwrap.dedent("\n".join(source.splitlines()[first - 1 : last]))
    return code, {name: helpers[name] for name in PAPER_FUNCTIONS}, f"main.py L{first}-L{last}"


def make_inputs(seed: int, max_seq_length: int, pairs: bool) -> Inputs:
    """A seeded batch: lengths spread from 3 tokens to max_seq_length, [CLS] a [SEP] (b [SEP]), then padding;
    hidden states with per-dim scales and real values at padding (a BERT computes them there); per layer, the
    attention's queries and keys."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.linspace(3 if not pairs else 6, max_seq_length, BATCH).round().long()
    lengths = lengths[torch.randperm(BATCH, generator=generator)]
    input_ids = torch.full((BATCH, max_seq_length), PAD_ID)
    for row, length in enumerate(lengths.tolist()):
        input_ids[row, :length] = torch.randint(1000, 30000, (length,), generator=generator)
        input_ids[row, 0] = CLS_ID
        input_ids[row, length - 1] = SEP_ID
        if pairs:
            input_ids[row, length // 2] = SEP_ID
    attention_mask = (input_ids != PAD_ID).long()
    scale = torch.rand(HIDDEN, generator=generator) * 2 + 0.1
    reps = [torch.randn(BATCH, max_seq_length, HIDDEN, generator=generator) * scale for _ in range(TEACHER_LAYERS + 1)]
    head_shape = (BATCH, HEADS, max_seq_length, HIDDEN // HEADS)
    queries = [torch.randn(head_shape, generator=generator) for _ in range(TEACHER_LAYERS)]
    # every [PAD] is one token at another position, so its keys cluster: a shared key per layer and head plus a
    # little noise puts each example's padding scores in a tight band, which a [SEP] at score 0 sits above or below
    padding = (attention_mask == 0)[:, None, :, None]
    keys = []
    for _ in range(TEACHER_LAYERS):
        shared = torch.randn(1, HEADS, 1, HIDDEN // HEADS, generator=generator)
        noise, real = (torch.randn(head_shape, generator=generator) for _ in range(2))
        keys.append(torch.where(padding, shared + 0.1 * noise, real))
    return Inputs(input_ids, attention_mask, reps, queries, keys)


def run_paper(case: Case, inputs: Inputs, student_reps: list[torch.Tensor], code: str, helpers: dict) -> dict:
    """The paper's lines at global_step 0 (maps and static masks drawn) and 1 (static masks applied); the
    step-1 namespace: rep_loss, the layer indices, token_indices and masks."""
    with tempfile.TemporaryDirectory() as output_dir:
        args = SimpleNamespace(
            keep_layers=case.keep_layers, layer_scheme=f"t_top{case.map_top}", s_layer_indices=[], t_layer_indices=[],
            att_ttop12=case.att_ttop12, output_dir=output_dir, token_scheme=case.token_scheme,
            keep_tokens=case.keep_tokens or inputs.max_seq_length, max_seq_length=inputs.max_seq_length,
            hidden_scheme=case.hidden_scheme, keep_hidden=case.keep_hidden,
        )  # fmt: skip
        space = {"torch": torch, "os": os, "args": args, "device": "cpu", "loss_mse": torch.nn.MSELoss(),
                 "input_ids": inputs.input_ids, "teacher_atts": inputs.paper_scores(),
                 "teacher_reps": inputs.teacher_reps,
                 "student_atts": [None] * case.student_layers, **helpers}  # fmt: skip
        for step in (0, 1):
            space.update(global_step=step, rep_loss=0.0, tr_rep_loss=0.0, student_reps=list(student_reps))
            exec(code, space)
    return space


def paper_kept(case: Case, space: dict, inputs: Inputs) -> torch.Tensor:
    """Bool [L, B, T, D]: the (layer, example, position, dim) values the paper's loss regresses on."""
    batch, length = inputs.input_ids.shape
    layers = len(space["t_layer_indices"])
    kept = torch.zeros(layers, batch, length, HIDDEN, dtype=torch.bool)
    for layer in range(layers):
        if case.token_scheme in ("attention", "attention_no_sep"):
            positions = space["token_indices"][layer]
        else:
            count = {"none": length, "cls": 1, "left_first": case.keep_tokens}[case.token_scheme]
            positions = torch.arange(count).expand(batch, -1)
        if case.hidden_scheme == "importance_mask_dynamic":
            mask = space["masks"][layer]
        elif case.hidden_scheme == "none":
            mask = torch.ones(batch, positions.shape[1], HIDDEN, dtype=torch.bool)
        else:
            mask = space["mask"].bool().expand(batch, positions.shape[1], HIDDEN)
        mask = mask.view(batch, -1, HIDDEN)  # `cls` keeps [B, D]
        kept[layer].scatter_(1, positions[..., None].expand(-1, -1, HIDDEN), mask)
    return kept


def hskd_kept(case: Case, hsk, inputs: Inputs) -> torch.Tensor:
    """Bool [L, B, T, D]: what hskd's loss regresses on (a ``magnitude_batch`` mask drawn as `stage1_loss`
    draws it under the paper protocol, which ranks padding too)."""
    cell = parse_cell(case.cell)
    batch, length = inputs.input_ids.shape
    layers = len(hsk.student_layers)
    keep = hsk.keep_mask.expand(batch, layers, hsk.target.shape[2], HIDDEN)
    if cell.width.kind == "per_batch":
        keep = cell.width.strategy.batch_mask(hsk.target, cell.width.fraction, None)
    index = hsk.token_index if hsk.token_index.ndim == 3 else hsk.token_index[:, None].expand(-1, layers, -1)
    kept = torch.zeros(batch, layers, length, HIDDEN, dtype=torch.bool)
    kept.scatter_(2, index[..., None].expand(-1, -1, -1, HIDDEN), keep)
    return kept.transpose(0, 1)


class FixedStudent:
    """A student whose hidden states are given tensors (already at the teacher width, as the paper's
    TinyBERT after fit_dense), so both codes regress the same numbers."""

    def __init__(self, hidden_states: list[torch.Tensor]):
        self.hidden_states = hidden_states

    def __call__(self, **inputs) -> SimpleNamespace:
        return SimpleNamespace(hidden_states=self.hidden_states)

    def project(self, layer: int, hidden: torch.Tensor) -> torch.Tensor:
        return hidden


def cached(case: Case, hsk, inputs: Inputs, folder: str, protocol: Protocol):
    """`hsk` written to an HSK store by extraction's writer and read back (fp16 values)."""
    path = f"{folder}/store.safetensors"
    target = StoreTarget("student", case.student_layers, parse_cell(case.cell), path, case.joint)
    with store_writer(target, BATCH, inputs.max_seq_length, HIDDEN, "0" * 64, "0" * 64, protocol) as writer:
        writer.write(0, hsk)
    return HSKStore(target.path).batch(torch.arange(BATCH))


def compare(case: Case, inputs: Inputs, code: str, helpers: dict, seed: int, study_protocol: Protocol) -> dict:
    generator = torch.Generator().manual_seed(seed + 1)
    shape = (BATCH, inputs.max_seq_length, HIDDEN)
    student_reps = [torch.randn(*shape, generator=generator) for _ in range(case.student_layers + 1)]
    space = run_paper(case, inputs, student_reps, code, helpers)
    protocol = study_protocol.for_cell(case.joint)
    rows = cls_attention_rows(inputs.hskd_attentions(protocol.token_score), protocol.token_score)
    result = TeacherPass(torch.stack(inputs.teacher_reps), rows[-1], inputs.input_ids, inputs.attention_mask,
                         torch.zeros(BATCH, 2), rows)  # fmt: skip
    cell = parse_cell(case.cell)
    hsk = compress_pass(cell, result, SEP_ID, case.student_layers, torch.arange(BATCH), protocol)
    batch = {"input_ids": inputs.input_ids, "attention_mask": inputs.attention_mask,
             "token_type_ids": torch.zeros_like(inputs.input_ids)}  # fmt: skip
    student = FixedStudent(student_reps)
    losses = {"online": stage1_loss(student, batch, hsk, "paper", padding_counts=True, cell=cell).item()}
    with tempfile.TemporaryDirectory() as folder:
        stored = cached(case, hsk, inputs, folder, protocol)
        losses["cached"] = stage1_loss(student, batch, stored, "paper", padding_counts=True, cell=cell).item()
    ours, theirs = hskd_kept(case, hsk, inputs), paper_kept(case, space, inputs)
    positions_differ = ours.any(-1) ^ theirs.any(-1)  # [L, B, T]
    paper_loss = float(space["rep_loss"])
    return {
        "student_layers": case.student_layers, "max_seq_length": inputs.max_seq_length, "cell": case.cell,
        "paper": case.flags,
        "token_scheme": case.token_scheme,
        "layers_equal": space["t_layer_indices"] == hsk.teacher_layers
        and space["s_layer_indices"] == hsk.student_layers,
        "positions_differ": int(positions_differ.sum()),
        "untied_selections": untied_selections(case, space, hsk),
        "positions": int(theirs.any(-1).sum()),
        "values_differ": int((ours ^ theirs).sum()),
        "values": int(theirs.sum()),
        "loss_paper": paper_loss,
        "online_rel_diff": abs(losses["online"] - paper_loss) / paper_loss,
        "cached_rel_diff": abs(losses["cached"] - paper_loss) / paper_loss,
    }  # fmt: skip


def untied_selections(case: Case, space: dict, hsk) -> int:
    """(layer, example) pairs whose selected tokens differ by more than ties: the paper's token scores (as its
    code computed them) of hskd's selection are not those of its own, to within `TIE`. 0 for schemes that rank
    by no score."""
    if case.token_scheme not in ("attention", "attention_no_sep"):
        return 0
    untied = 0
    for layer, (scores, chosen) in enumerate(zip(space["token_scores"], space["token_indices"], strict=True)):
        ours = hsk.token_index[:, layer] if hsk.token_index.ndim == 3 else hsk.token_index
        paper = scores.gather(1, chosen).sort(1).values
        close = torch.isclose(scores.gather(1, ours).sort(1).values, paper, rtol=0, atol=TIE)
        untied += int((~close).any(1).sum())
    return untied


def cases(student_layers: int) -> list[Case]:
    """The paper's sweeps and joint cells on a 12-layer teacher: depth (t_top12, every keep_layers; t_top10,
    t_top8), length (k of 1 to 64), width (fractions 0.01 to 0.5) and the joint 1l_10t_0.1h-like cells."""
    found = [Case(student_layers, 12, keep) for keep in range(1, student_layers + 2)]
    found += [Case(student_layers, top, None) for top in (10, 8)]
    for keep in (1, 5, 10, 20, 64):
        found += [Case(student_layers, 10, None, scheme, keep)
                  for scheme in ("attention", "attention_no_sep", "left_first")]  # fmt: skip
    found.append(Case(student_layers, 10, None, "cls", 1))
    for fraction in (0.01, 0.05, 0.1, 0.5):
        found += [Case(student_layers, 10, None, hidden_scheme=scheme, keep_hidden=fraction)
                  for scheme in ("importance_mask_dynamic", "uniform_mask")]  # fmt: skip
    for keep_layers, scheme, tokens, fraction in ((1, "attention", 10, 0.1), (2, "attention_no_sep", 5, 0.05),
                                                  (student_layers + 1, "left_first", 10, 0.1)):  # fmt: skip
        found.append(Case(student_layers, 8, keep_layers, scheme, tokens, "importance_mask_dynamic", fraction, True))
    return found


def verdict(row: dict, tolerance: float = 1e-5, cached_tolerance: float = 2e-3) -> str:
    """"identical", "explained: …" (a difference the docs list) or "DIFFERENT"."""
    same_selection = row["layers_equal"] and row["positions_differ"] == 0 and row["values_differ"] == 0
    if same_selection and row["online_rel_diff"] < tolerance and row["cached_rel_diff"] < cached_tolerance:
        return "identical"
    scheme = row["token_scheme"]
    if row["layers_equal"] and scheme in EXPLAINED and row["untied_selections"] == 0:
        return f"explained: {EXPLAINED[scheme]}"
    return "DIFFERENT"


def check(checkout: Path, seed: int, protocol: Protocol = PRESETS["paper"]) -> tuple[pd.DataFrame, dict]:
    code, helpers, where = paper_code(checkout)
    rows = []
    for max_seq_length, pairs in ((64, False), (128, True)):
        inputs = make_inputs(seed, max_seq_length, pairs)
        for student_layers in (4, 6):
            rows += [compare(case, inputs, code, helpers, seed, protocol) for case in cases(student_layers)]
    table = pd.DataFrame(rows)
    table["verdict"] = [verdict(row) for row in rows]
    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    about = {"paper_commit": commit.stdout.strip() or "unknown", "paper_lines": where, "seed": seed,
             "protocol": protocol.as_dict()}  # fmt: skip
    return table, about


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per kind of case (depth map, length scheme, width scheme, joint): how many cases, how many
    agree, and the largest differences."""
    kind = table["paper"].map(lambda flags: "joint (--att_ttop12 True)" if "att_ttop12 True" in flags
                              else " ".join(part for part in flags.split("--")[3:] if "keep" not in part).strip()
                              or "depth (t_top12 keep 1..Ls+1; t_top10, t_top8)")  # fmt: skip
    frame = table.assign(kind=kind, identical=table["verdict"] == "identical",
                         position_share=table["positions_differ"] / table["positions"])  # fmt: skip
    return frame.groupby("kind", sort=False).agg(
        cases=("verdict", "size"), identical=("identical", "sum"), max_positions_differ=("position_share", "max"),
        max_online_rel_diff=("online_rel_diff", "max"), max_cached_rel_diff=("cached_rel_diff", "max"),
    ).reset_index()  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper-code", type=Path, required=True,
                        help="a checkout of llyx97/Marginal-Utility-Diminishes")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--choice", action="append", default=[], metavar="KEY=VALUE",
                        help="a protocol choice over the paper preset's, e.g. token_score=logit")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("results/differential/differential_check.json"))
    args = parser.parse_args(argv)
    if not (args.paper_code / "main.py").is_file():
        parser.error(f"--paper-code {args.paper_code}: no main.py there (expected a checkout of the paper's code)")
    try:
        protocol = resolve("paper", dict(choice.split("=", 1) for choice in args.choice))
    except ValueError as error:
        parser.error(str(error))
    try:
        table, about = check(args.paper_code, args.seed, protocol)
    except ValueError as error:
        parser.error(str(error))
    columns = ["max_seq_length", "student_layers", "paper", "cell", "positions_differ", "untied_selections",
               "positions", "values_differ",
               "values", "online_rel_diff", "cached_rel_diff", "verdict"]  # fmt: skip
    print(f"paper code {about['paper_commit'][:7]} ({about['paper_lines']}), seed {about['seed']}, hskd protocol "
          f"{protocol.as_dict()}")  # fmt: skip
    print(summary(table).to_markdown(index=False, floatfmt=".1e"))
    print()
    print(table[columns].to_markdown(index=False, floatfmt=".1e"))
    counts = table["verdict"].str.split(":").str[0].value_counts().to_dict()
    print("verdicts:", counts)
    write_text(json.dumps({**about, "verdicts": counts, "rows": table.to_dict("records")}, indent=1), args.out)
    return 1 if "DIFFERENT" in counts else 0


if __name__ == "__main__":
    raise SystemExit(main())
