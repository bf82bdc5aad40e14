"""STUDY.toml: the research comparison of the four methods, as one file (resources/sample_study.toml).

    [study]
    name = "sample"                        the study's record: <workspace>-jobs/study-sample.json
    questions = "sample_questions.jsonl"   imported first (an import adds nothing twice); relative to the file
    held_out = 0.2                         share of those questions held out for the evaluation
    feedback = "sample_feedback.jsonl"     optional: verdicts to store first (store/imports/feedback.py)
    model = "/models/Llama-3.2-3B"         optional: the base model (default: the configured one)
    max_new_tokens = 64                    the evaluation's answer length
    report = "study-report.html"           written at the end, relative to the workspace's folder

    [settings]                             every training step; a key a kind does not have is left out of it
    max_steps = 4

    [steps.sft]                            A; the steps run in the order sft, hitl, reward, ppo, dpo
    [steps.hitl]                           B
    parent = "sft"                         a step whose version it continues from ("base": the base model)
    [steps.reward]                         C's reward model
    [steps.ppo]                            C; scored by the reward step's version
    parent = "sft"
    max_new_tokens = 24                    a step's own settings override [settings]
    [steps.dpo]                            D
    parent = "sft"

Every mistake is reported with the file and the key: an unknown table, key or setting, a missing file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STEP_ORDER = ("sft", "hitl", "reward", "ppo", "dpo")
STEP_KEYS = {"parent"}  # the rest of a step's table are its training settings
BASE = "base"
STUDY_KEYS = {"name", "questions", "held_out", "feedback", "model", "max_new_tokens", "report"}


class StudyError(ValueError):
    """STUDY.toml cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Step:
    kind: str
    parent: str  # a step's kind, or "base"
    settings: dict[str, Any]


@dataclass(frozen=True)
class Study:
    path: Path
    name: str
    questions: Path | None
    held_out: float
    feedback: Path | None
    model: str | None
    max_new_tokens: int
    report: str
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def step(self, kind: str) -> Step | None:
        return next((s for s in self.steps if s.kind == kind), None)


def _file(path: Path, table: dict, key: str) -> Path | None:
    if table.get(key) is None:
        return None
    found = (path.parent / str(table[key])).expanduser()
    if not found.exists():
        raise StudyError(f"{path}: [study] {key} = {table[key]!r}: no such file ({found}).")
    return found


def _step(path: Path, kind: str, table: Any, common: dict[str, Any]) -> Step:
    from medalign_desktop.jobs.memory_plan import kind_defaults

    if not isinstance(table, dict):
        raise StudyError(f"{path}: [steps.{kind}] must be a table.")
    known = kind_defaults(kind)
    own = {k: v for k, v in table.items() if k not in STEP_KEYS}
    unknown = sorted(set(own) - set(known))
    if unknown:
        raise StudyError(f"{path}: [steps.{kind}] {unknown[0]}: {kind} jobs have no such setting.")
    settings = {**{k: v for k, v in common.items() if k in known}, **own}
    return Step(kind, str(table.get("parent", BASE)), settings)


def load_study(path: str | Path) -> Study:
    path = Path(path).expanduser()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StudyError(f"Cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{path}: not valid TOML ({exc}).") from None
    unknown_tables = sorted(set(raw) - {"study", "settings", "steps"})
    if unknown_tables:
        raise StudyError(
            f"{path}: unknown table [{unknown_tables[0]}] (there are [study], [settings], [steps.*])."
        )
    study, common, steps = raw.get("study", {}), raw.get("settings", {}), raw.get("steps", {})
    unknown_keys = sorted(set(study) - STUDY_KEYS)
    if unknown_keys:
        raise StudyError(
            f"{path}: [study] {unknown_keys[0]}: no such key (there are {', '.join(sorted(STUDY_KEYS))})."
        )
    unknown_steps = sorted(set(steps) - set(STEP_ORDER))
    if unknown_steps:
        raise StudyError(f"{path}: [steps.{unknown_steps[0]}]: the steps are {', '.join(STEP_ORDER)}.")
    parsed = tuple(_step(path, kind, steps[kind], common) for kind in STEP_ORDER if kind in steps)
    _check_order(path, parsed)
    return Study(
        path=path, name=str(study.get("name", path.stem)), questions=_file(path, study, "questions"),
        held_out=float(study.get("held_out", 0.0)), feedback=_file(path, study, "feedback"),
        model=study.get("model"), max_new_tokens=int(study.get("max_new_tokens", 64)),
        report=str(study.get("report", f"{path.stem}-report.html")), steps=parsed,
    )  # fmt: skip


def _check_order(path: Path, steps: tuple[Step, ...]) -> None:
    """A parent is an earlier answering step (or base); PPO needs the reward step."""
    done: list[str] = []
    for step in steps:
        if step.parent != BASE and (step.parent not in done or step.parent == "reward"):
            raise StudyError(
                f"{path}: [steps.{step.kind}] parent = {step.parent!r}: name 'base' or an earlier answering "
                f"step ({', '.join(k for k in done if k != 'reward') or 'none before it'})."
            )
        if step.kind == "ppo" and "reward" not in done:
            raise StudyError(f"{path}: [steps.ppo] needs a [steps.reward] step to score its answers.")
        done.append(step.kind)
