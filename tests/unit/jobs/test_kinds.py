"""The two tables of job kinds agree, and the job folder's file names are written once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from medalign_desktop.jobs.evaluation import ANSWERING_KINDS
from medalign_desktop.jobs.job_types import JobKindSpec, Panel
from medalign_desktop.jobs.kinds import APP_KINDS, kinds_where
from training import job_folder
from training.kinds import KINDS

ROOT = Path(__file__).resolve().parents[3]
# the job folder's names that only training/job_folder.py may spell out
CONTRACT_NAMES = ("result.json", "answers.jsonl", "scores.jsonl", "data/train.jsonl", "train.jsonl")


def test_the_app_and_the_training_side_know_the_same_kinds():
    assert set(APP_KINDS) == set(KINDS)


@pytest.mark.parametrize("name", sorted(APP_KINDS))
def test_every_kind_has_a_label_a_snapshot_writer_and_panels(name):
    spec = APP_KINDS[name]
    assert isinstance(spec, JobKindSpec) and spec.name == name
    assert spec.label.strip()
    assert callable(spec.write_snapshot) and callable(spec.config)
    assert isinstance(spec.panels, tuple) and all(isinstance(p, Panel) for p in spec.panels)
    # a kind either makes a version (named by its prefix) or stores its results
    assert (spec.version_prefix is None) == (spec.store_results is not None)
    assert (spec.store_results is None) == (spec.result_error is None)
    if spec.answers:
        assert spec.short_label and spec.version_prefix


def test_the_kinds_that_answer_are_the_same_everywhere():
    """jobs/evaluation.py sits below the table (the evaluate row imports it), so it names them itself."""
    assert ANSWERING_KINDS == kinds_where(answers=True)


def test_result_json_fields_are_those_the_programs_write():
    result = job_folder.finished_result("sft", "/a", {"loss": 1.0}, {"kind": "sft"}, {"last": {}})
    assert list(result) == ["status", "kind", "adapter_path", "metrics", "checkpoints", "config"]
    assert set(job_folder.ended_result("failed", "why", "what")) == {"status", "reason", "advice"}
    assert set(result) | {"reason", "advice"} == set(job_folder.RESULT_FIELDS)


def _string_constants(path: Path):
    """(line, text) of every string constant in a module except its docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_the_job_folder_names_are_written_only_in_training_job_folder():
    """Code takes the names from job_folder: no string without spaces (a name or a path, not prose such as
    docstrings and messages, which may name the files) spells one out."""
    own = ROOT / "training" / "job_folder.py"
    found = [
        f"{path.relative_to(ROOT)}:{line} {text!r}"
        for package in ("medalign_desktop", "training")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != own
        for line, text in _string_constants(path)
        if not any(c.isspace() for c in text) and any(name in text for name in CONTRACT_NAMES)
    ]
    assert not found, "\n".join(found)
