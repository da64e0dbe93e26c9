"""Only the project speaks: README, docs, sources, benchmarks, tools and ``--help`` texts
address users and contributors, never the history of their own development.

Phrases refused (case-insensitive): a reference to an issue by number ("issue 17", "Issue-6",
"#17"), "this stop", "previous stop", "this session" (a *stored* session of results is fine,
so the phrase is matched exactly), "the issue's", and remarks about "other jobs" or "other
engineers" on a shared machine.
"""

import argparse
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

REFUSED = re.compile(
    r"\bissue[ -]?#?\d+"          # issue 17, Issue-6, issue #3
    r"|(?<![\w&/#])#\d{1,4}\b"    # #17 (not a colour such as #1f77b4, not an HTML entity &#39;)
    r"|\bthis stop\b|\bprevious stop\b|\bthis session\b|\bthe issue's\b"
    r"|\bother (?:jobs|engineers)\b",
    re.IGNORECASE,
)

TEXT_SUFFIXES = {".md", ".py", ".toml", ".yml", ".yaml", ".txt", ".sh", ".cfg"}


def _files():
    yield from (ROOT / name for name in ("README.md", "CONTRIBUTING.md", "CHANGELOG.md", "mkdocs.yml",
                                         "pyproject.toml") if (ROOT / name).exists())
    for folder in ("docs", "src", "benchmarks", "tools", "examples"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in TEXT_SUFFIXES and "__pycache__" not in path.parts:
                yield path


def _hits(text: str, where: str) -> list[str]:
    return [f"{where}:{i}: {m.group(0)!r} in {line.strip()[:100]!r}"
            for i, line in enumerate(text.splitlines(), 1) for m in REFUSED.finditer(line)]


def test_the_pattern_catches_what_it_should_and_only_that():
    bad = ["issue 17", "Issue-6 configuration", "see #17", "at this stop", "the previous stop",
           "this session's run", "the issue's goal", "shared with other jobs", "other engineers' jobs"]
    good = ["a stored session of results", "the session's end", "colour #1f77b4", "&#39;", "[data](#data)",
            "issues are welcome", "stop the grid", "non-stop", "one stop"]
    assert all(REFUSED.search(text) for text in bad), [t for t in bad if not REFUSED.search(t)]
    assert not any(REFUSED.search(text) for text in good), [t for t in good if REFUSED.search(t)]


def test_no_development_log_in_what_users_read():
    hits = [hit for path in _files()
            for hit in _hits(path.read_text(encoding="utf-8", errors="replace"), str(path.relative_to(ROOT)))]
    assert not hits, "\n".join(hits)


def _build_parser():
    for module in ("hessrank.cli.main", "hessrank.cli.parser", "hessrank.cli"):
        try:
            found = getattr(importlib.import_module(module), "build_parser", None)
        except ImportError:
            continue
        if found is not None:
            return found()
    pytest.fail("no build_parser() in hessrank.cli")


def _helps(parser: argparse.ArgumentParser, name: str):
    yield name, parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _helps(sub, f"{name} {sub_name}")


def test_no_development_log_in_help_texts():
    helps = dict(_helps(_build_parser(), "hessian-rank"))
    assert {"hessian-rank run", "hessian-rank sweep width", "hessian-rank grid"} <= set(helps)
    hits = [hit for name, text in helps.items() for hit in _hits(text, name)]
    assert not hits, "\n".join(hits)
