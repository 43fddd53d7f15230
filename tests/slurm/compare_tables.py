"""Compare the tables of two runs of one study: `python compare_tables.py RESULTS_A RESULTS_B`.

Every `tables/*.csv` of A must exist in B and hold the same rows, column for column, compared as the text
the aggregate rule wrote (so bit for bit, no tolerance: both runs are the same CPU code on the same machine).
Columns that legitimately differ between two runs are dropped first: wall-clock times (`*seconds*`,
`*_time*`, `*date*`), peak memory (`*rss*`: the process that measures it is launched differently), file
paths (`*path*`, `*dir*`) and host names (`*host*`, `*node*`). The rendered tables (`*.md`, `*.tex`) hold
none of those and must be equal byte for byte. Exit 0 when equal; otherwise one line per difference on
stderr and exit 1.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

VOLATILE = re.compile(r"seconds|_time|^time|date|rss|path|dir|host|node", re.IGNORECASE)


def dropped_columns(columns) -> list[str]:
    return [column for column in columns if VOLATILE.search(str(column))]


def compare(a: Path, b: Path) -> list[str]:
    problems = []
    tables_a = sorted(p.name for p in (a / "tables").glob("*.csv"))
    tables_b = sorted(p.name for p in (b / "tables").glob("*.csv"))
    if not tables_a:
        return [f"no tables in {a}/tables"]
    if tables_a != tables_b:
        problems.append(f"table files differ: {sorted(set(tables_a) ^ set(tables_b))}")
    for name in sorted(set(tables_a) & set(tables_b)):
        frame_a = pd.read_csv(a / "tables" / name, dtype=str, keep_default_na=False)
        frame_b = pd.read_csv(b / "tables" / name, dtype=str, keep_default_na=False)
        if list(frame_a.columns) != list(frame_b.columns):
            problems.append(f"{name}: columns differ: {sorted(set(frame_a.columns) ^ set(frame_b.columns))}")
            continue
        drop = dropped_columns(frame_a.columns)
        if drop:
            print(f"{name}: not compared (differ between runs by nature): {', '.join(drop)}")
        frame_a, frame_b = frame_a.drop(columns=drop), frame_b.drop(columns=drop)
        if len(frame_a) != len(frame_b):
            problems.append(f"{name}: {len(frame_a)} rows vs {len(frame_b)}")
            continue
        if len(frame_a) == 0:
            problems.append(f"{name}: empty in both runs")
            continue
        # row order is the aggregate's (sorted): compare in place
        unequal = frame_a.ne(frame_b)
        for row, column in zip(*unequal.to_numpy().nonzero(), strict=True):
            problems.append(f"{name} row {row} column {frame_a.columns[column]}: "
                            f"{frame_a.iat[row, column]!r} vs {frame_b.iat[row, column]!r}")
    rendered = sorted({p.name for p in (a / "tables").iterdir() if p.suffix in (".md", ".tex")})
    for name in rendered:
        if not (b / "tables" / name).exists():
            problems.append(f"{name}: missing in {b}/tables")
        elif (a / "tables" / name).read_bytes() != (b / "tables" / name).read_bytes():
            problems.append(f"{name}: the rendered tables differ")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    a, b = Path(argv[0]), Path(argv[1])
    problems = compare(a, b)
    for problem in problems[:50]:
        print(f"DIFFERENT {problem}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} difference(s) between {a}/tables and {b}/tables", file=sys.stderr)
        return 1
    count = len([p for p in (a / "tables").iterdir() if p.suffix in (".csv", ".md", ".tex")])
    print(f"{count} tables (csv, md, tex) equal: {a}/tables and {b}/tables")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
