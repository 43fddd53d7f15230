"""The README and docs/ quote only what exists: `hskd` subcommands and their options, config keys (dotted, or in
`--config key=value`), `hskd.*` names, and relative links to files in the repository."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml

from hskd.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SCHEMA = yaml.safe_load((ROOT / "src/hskd/planning/schemas/config.schema.yaml").read_text())


def quoted(text: str) -> list[str]:
    """Inline code spans and the lines of fenced code blocks."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    outside = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.findall(r"`([^`\n]+)`", outside) + [line for block in blocks for line in block.splitlines()]


def subcommand_options() -> dict[str, set[str]]:
    parser = build_parser()
    [sub] = [action for action in parser._actions if action.dest == "command"]
    return {name: {option for action in command._actions for option in action.option_strings}
            for name, command in sub.choices.items()}  # fmt: skip


def hskd_calls(snippet: str) -> list[tuple[str, list[str]]]:
    """(subcommand, its --options) of every `hskd <subcommand>` call in a quoted snippet."""
    calls = []
    for match in re.finditer(r"(?:^|[\s(`])hskd ([a-z][a-z-]*)((?: +[^|&;>]*)?)", snippet):
        calls.append((match[1], re.findall(r"(?<!\S)(--[a-z][a-z-]*)", match[2])))
    return calls


def schema_node(path: list[str]) -> dict | None:
    """The schema of a dotted config key, or None where it has none."""
    node = SCHEMA
    for part in path:
        while "$ref" in node:
            node = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[1]]
        properties = node.get("properties", {})
        if part in properties:
            node = properties[part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
    return node


def config_keys(snippet: str) -> list[str]:
    """Dotted config keys (`report.margin`, `protocol_choices.hsk_padding: included`) and `--config` keys."""
    keys = []
    is_file = re.search(r"\.(py|md|smk|yaml|json|csv|tex|png|pdf|txt|log|sh)$", snippet.strip())
    if not is_file and (match := re.fullmatch(r"([a-z_]+(?:\.[a-z_0-9]+)+)(?::.*)?", snippet.strip())):
        keys.append(match[1])
    for assignments in re.findall(r"--config ((?:'?[a-z_]+=[^ ]*'? ?)+)", snippet):
        keys += re.findall(r"'?([a-z_]+)=", assignments)
    return [key for key in keys if key.split(".")[0] in SCHEMA["properties"]]


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_quoted_hskd_commands_exist(page):
    options = subcommand_options()
    wrong = []
    for snippet in quoted(page.read_text()):
        for command, used in hskd_calls(snippet):
            if command not in options:
                wrong.append(f"hskd {command}")
            wrong += [f"hskd {command} {option}" for option in used if option not in options.get(command, used)]
    assert wrong == []


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_quoted_config_keys_exist(page):
    keys = [key for snippet in quoted(page.read_text()) for key in config_keys(snippet)]
    assert [key for key in keys if schema_node(key.split(".")) is None] == []


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_quoted_hskd_names_exist(page):
    names = {name for snippet in quoted(page.read_text()) for name in re.findall(r"(?<![/\w])hskd(?:\.[A-Za-z_]\w*)+",
                                                                                    snippet)}  # fmt: skip
    assert sorted(name for name in names if not resolves(name)) == []


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_relative_links_reach_files(page):
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text())
    assert [link for link in links if not link.startswith("http") and not (page.parent / link).exists()] == []


def test_the_checks_see_what_does_not_exist():
    assert hskd_calls("hskd distill @f --threads 1 --log x") == [("distill", ["--threads", "--log"])]
    assert "--nosuch" not in subcommand_options()["distill"] and "nosuch" not in subcommand_options()
    assert config_keys("snakemake --config glue_dir=x 'tasks=[CoLA]' threads=1") == ["glue_dir", "tasks", "threads"]
    assert config_keys("report.nosuch: 1") == ["report.nosuch"] and config_keys("grid.py") == []
    assert schema_node(["report", "margin"]) is not None and schema_node(["report", "nosuch"]) is None
    assert schema_node(["protocol_choices", "hsk_padding"]) is not None
    assert resolves("hskd.report.stats.seeds_for_noninferiority") and not resolves("hskd.stats")
