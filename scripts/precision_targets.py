"""What lower precision changes in HSK targets: a bf16 (autocast) teacher pass against an fp32 one, and fp16
store values against fp32 targets. The paper's teacher runs in fp32 and hands fp32 targets to the loss.

For each cell, over the same examples: the share of selected tokens and of kept width entries that a bf16
teacher pass selects differently from an fp32 pass, and the relative error of the kept values, of bf16 targets
and of fp32 targets rounded to fp16 (what a store holds). Prints a Markdown table and writes JSON:

    python scripts/precision_targets.py --glue-dir ../shared/glue --task SST-2 --model minilm-l6
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import torch

from hskd.common.glue import load_split
from hskd.common.io import write_text
from hskd.hsk.sources import compress_pass
from hskd.models.data import TokenizedSplit, tokenize
from hskd.models.hub import load_classifier, load_tokenizer
from hskd.models.runtime import setup_runtime
from hskd.models.teacher import teacher_pass
from hskd.planning.cells import parse_cell
from hskd.planning.protocol import PRESETS

CELLS = ("depth=all-top6/length=attention-10/width=all", "depth=all-top6/length=all/width=magnitude-0.1",
         "depth=top6-1/length=attention_nosep-10/width=magnitude-0.1")  # fmt: skip
STUDENT_LAYERS = 3


def relative_error(approx: torch.Tensor, exact: torch.Tensor, keep: torch.Tensor) -> float:
    """Median over kept entries of |approx - exact| / |exact| (entries with exact == 0 left out)."""
    keep = keep.expand_as(exact) & (exact != 0)
    return ((approx - exact).abs() / exact.abs())[keep].median().item()


def passes(model, batches, precision: str, max_seq_length: int):
    setup_runtime(threads=2, seed=0, precision=precision)
    return [teacher_pass(model, batch, max_seq_length, attentions=True) for batch in batches]


def compare(model, tokenizer, batches, max_seq_length: int) -> list[dict]:
    exact_passes, bf16_passes = (passes(model, batches, precision, max_seq_length) for precision in ("fp32", "bf16"))
    rows = []
    for cell_text in CELLS:
        cell = parse_cell(cell_text)
        tokens_differ = entries_differ = entries = tokens = 0
        bf16_errors, fp16_errors = [], []
        for number, (exact_pass, bf16_pass) in enumerate(zip(exact_passes, bf16_passes, strict=True)):
            ids = torch.arange(len(exact_pass.input_ids)) + number * len(exact_pass.input_ids)
            exact = compress_pass(cell, exact_pass, tokenizer.sep_token_id, STUDENT_LAYERS, ids, PRESETS["hskd"])
            low = compress_pass(cell, bf16_pass, tokenizer.sep_token_id, STUDENT_LAYERS, ids, PRESETS["hskd"])
            tokens += exact.token_index.numel()
            tokens_differ += (exact.token_index != low.token_index).sum().item()
            exact_keep = exact.keep_mask.expand_as(exact.target)
            entries += exact_keep.sum().item()
            entries_differ += (exact_keep != low.keep_mask.expand_as(low.target)).sum().item() / 2
            same = (exact.token_index == low.token_index).all().item()
            if same:
                bf16_errors.append(relative_error(low.target, exact.target, exact.keep_mask & low.keep_mask))
            fp16_errors.append(relative_error(exact.target.half().float(), exact.target, exact.keep_mask))
        rows.append({
            "cell": cell_text,
            "tokens_selected_differently": tokens_differ / tokens,
            "width_entries_kept_differently": entries_differ / entries,
            "bf16_pass_median_relative_error": float(pd.Series(bf16_errors).median()) if bf16_errors else None,
            "fp16_store_median_relative_error": float(pd.Series(fp16_errors).median()),
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm-l6", help="teacher: a model folder or name (default minilm-l6)")
    parser.add_argument("--glue-dir", required=True)
    parser.add_argument("--task", default="SST-2")
    parser.add_argument("--examples", type=int, default=256, help="dev examples used (the first ones)")
    parser.add_argument("--max-seq-length", type=int, default=64)
    parser.add_argument("--out", default="results/bench/precision_targets.json")
    args = parser.parse_args()
    tokenizer = load_tokenizer(args.model)
    model = load_classifier(args.model, num_labels=2, attn_implementation="eager").eval()
    dev = load_split(args.task, "dev", args.glue_dir)
    split = TokenizedSplit(**tokenize(dev, tokenizer, args.max_seq_length, args.task))
    count = min(args.examples, len(split))
    batches = [split.batch(torch.arange(start, min(start + 32, count))) for start in range(0, count, 32)]
    rows = compare(model, tokenizer, batches, args.max_seq_length)
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False, floatfmt=".3g"))
    write_text(json.dumps({"model": args.model, "task": args.task, "examples": args.examples,
                           "max_seq_length": args.max_seq_length, "rows": rows}, indent=2) + "\n", Path(args.out))


if __name__ == "__main__":
    main()
