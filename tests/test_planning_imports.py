"""Planning stays torch-free: what Snakemake imports and calls to parse the workflow, and `hskd --help`.

Each check runs in a fresh interpreter, since the test process has long imported torch.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers")
PACKAGE = ROOT / "src" / "hskd"
TORCH_FREE_LAYERS = ("common", "planning", "report")  # every module in these folders, whatever is added later


def modules_of(layer: str) -> list[str]:
    return sorted(
        "hskd." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        for path in (PACKAGE / layer).glob("*.py")
        if path.name != "__init__.py"
    )


def heavy_modules_after(code: str) -> list[str]:
    """Which of torch and transformers are loaded after running `code` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(*[name for name in {HEAVY!r} if name in sys.modules])"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_torch_free_layers_import_no_torch():
    modules = [module for layer in TORCH_FREE_LAYERS for module in modules_of(layer)]
    assert "hskd.planning.config" in modules and "hskd.report.tables" in modules  # the folders are found
    assert heavy_modules_after(f"import {', '.join(modules)}") == []


def test_the_workflows_hskd_imports_load_no_torch():
    statements = {
        match[1]
        for rules in [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
        for match in re.finditer(r"^\s*((?:from|import) hskd\b.*)$", rules.read_text(), re.MULTILINE)
    }
    assert any("hskd.planning.config" in statement for statement in statements)  # the pattern still finds them
    assert heavy_modules_after("\n".join(sorted(statements))) == []


def test_planning_the_paper_study_loads_no_torch():
    # Sizing the stores of the paper's bernoulli widths draws their dims: that must not need torch either.
    code = """
import yaml
from snakemake.utils import update_config
from hskd.planning.study import load
from hskd.planning.grid import cached_cells, runs
config = {}
for path in ("config.yaml", "workflow/configs/paper.yaml"):
    update_config(config, yaml.safe_load(open(path)))
study = load(config)
assert runs(study)
assert any(cell.width.scheme == "bernoulli" for cell in cached_cells(study, study.tasks[0], "pretrained"))
"""
    assert heavy_modules_after(code) == []


def test_cli_help_imports_no_torch():
    code = """
import contextlib, io
from hskd.cli import main
with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):
    main(["--help"])
"""
    assert heavy_modules_after(code) == []
