"""`medalign study run STUDY.toml`: the four methods, their evaluation and the report, on one workspace.

    questions and feedback imported (adds nothing twice)
    -> for each step (sft A, hitl B, reward + ppo C, dpo D): its JobRequest -> its fingerprint: the settings
       (kind, settings, parent version, reward version, base model) and the data (a scratch snapshot's data
       files, hashed) -> the same as the study's record says for a version that still exists: skipped;
       else the job runs through the app's queue (jobs/headless.py) and the record is saved at once
    -> evaluate: base and every answering version on the held-out questions (answers already stored for the
       same settings are reused); the caller writes the report (cli/study.py: report/ is above jobs/)

The record is ``<workspace>-jobs/study-NAME.json``; a re-run after a failure continues at the failed step.
HITL learns only verdicts newer than the last HITL retrain: when nothing is new and its settings are the
recorded ones the step is skipped; when they changed (say A was retrained) it stops and says why.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medalign_desktop.jobs.evaluation import evaluation_request
from medalign_desktop.jobs.headless import HeadlessWorkspace, JobReporter
from medalign_desktop.jobs.job_files import jobs_folder, private_dir
from medalign_desktop.jobs.job_types import SnapshotError
from medalign_desktop.jobs.running import snapshot_request
from medalign_desktop.jobs.snapshot import write_snapshot
from medalign_desktop.jobs.study_config import BASE, Step, Study, StudyError
from medalign_desktop.store import Store
from training.job_folder import DATA_DIR


@dataclass(frozen=True)
class StudyResult:
    versions: dict[str, str]  # step kind -> version name
    ran: tuple[str, ...]  # the steps that trained this time
    failed: str | None = None  # the step's sentence when one failed


def record_path(db_path: Path, study: Study) -> Path:
    return jobs_folder(db_path) / f"study-{study.name}.json"


def _load_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"steps": {}}
    except (OSError, ValueError) as exc:
        raise StudyError(
            f"The study's record {path} cannot be read ({exc}); move it away to start afresh."
        ) from None
    return record if isinstance(record, dict) and isinstance(record.get("steps"), dict) else {"steps": {}}


def _save_record(path: Path, record: dict[str, Any]) -> None:
    private_dir(path.parent)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
    os.replace(temporary, path)


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def data_digest(store: Store, request) -> str:
    """The SHA-256 of the data files a job of ``request`` would train on now (a scratch snapshot, seed 0)."""
    with tempfile.TemporaryDirectory(prefix="medalign-study-") as scratch:
        write_snapshot(store, snapshot_request(request, seed=0), Path(scratch) / "job")
        data = Path(scratch) / "job" / DATA_DIR
        hashes = {
            p.relative_to(data).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(data.rglob("*"))
            if p.is_file()
        }
    return digest(hashes)


def prepare_data(store: Store, study: Study) -> list[str]:
    """Import the study's questions and feedback (nothing twice); the sentences to show."""
    from medalign_desktop.store.imports.feedback import import_feedback
    from medalign_desktop.store.imports.questions import import_questions

    said = []
    if study.questions is not None:
        said.append(import_questions(store, study.questions, held_out_fraction=study.held_out).summary())
    if study.feedback is not None:
        report = import_feedback(store, study.feedback)
        if report.errors:
            raise StudyError(report.summary())
        said.append(report.summary())
    return said


def _request(store: Store, step: Step, versions: dict[str, str], base_model: str, system_prompt: str):
    from medalign_desktop.jobs.requests import reward_versions, training_request

    reward_id = None
    if step.kind == "ppo":
        reward_id = next(v.id for v in reward_versions(store) if v.name == versions["reward"])
    parent = BASE if step.parent == BASE else versions[step.parent]
    return training_request(
        store, kind=step.kind, base_model=base_model, system_prompt=system_prompt, trigger="study",
        overrides=dict(step.settings), reward_version_id=reward_id, parent=parent,
    )  # fmt: skip


async def run_study(
    ws: HeadlessWorkspace, study: Study, base_model: str, system_prompt: str, reporter: JobReporter,
    say: Callable[[str], None],
) -> StudyResult:  # fmt: skip
    """Every step in order (skipped when done), then the evaluation; stops at the first step that fails."""
    from medalign_desktop.jobs.bundle import base_model_identity

    for sentence in await ws.store_call(lambda store: prepare_data(store, study)):
        say(sentence)
    path = record_path(ws.db_path, study)
    record = _load_record(path)
    run = _StepRunner(ws, base_model, system_prompt, reporter, say, base_model_identity(base_model))
    for step in study.steps:
        failure = await run.step(step, record)
        if failure:
            return StudyResult(run.versions, tuple(run.ran), f"{step.kind}: {failure}")
        _save_record(path, record)
    names = [BASE] + [name for kind, name in run.versions.items() if kind != "reward"]
    request = await ws.store_call(
        lambda store: evaluation_request(store, names, base_model, system_prompt, study.max_new_tokens)
    )
    say(f"evaluate {', '.join(names)} on the held-out questions ...")
    outcome = await ws.run_job(request, reporter)
    if not outcome.succeeded:
        return StudyResult(
            run.versions, tuple(run.ran), f"evaluate: job #{outcome.job_id} {outcome.state}: {outcome.error}"
        )
    return StudyResult(run.versions, tuple(run.ran))


@dataclass
class _StepRunner:
    ws: HeadlessWorkspace
    base_model: str
    system_prompt: str
    reporter: JobReporter
    say: Callable[[str], None]
    model_identity: dict[str, str]
    versions: dict[str, str] = field(default_factory=dict)  # step kind -> its version's name
    ran: list[str] = field(default_factory=list)

    async def step(self, step: Step, record: dict[str, Any]) -> str | None:
        """Skip or run one step, noting its version in ``versions`` and ``record``; the failure, if any."""
        ws = self.ws
        request = await ws.store_call(
            lambda store: _request(store, step, self.versions, self.base_model, self.system_prompt)
        )
        settings = digest({
            "kind": step.kind, "settings": step.settings, "model": self.model_identity,
            "parent": BASE if step.parent == BASE else self.versions[step.parent],
            "reward": self.versions.get("reward") if step.kind == "ppo" else None,
        })  # fmt: skip
        try:
            data, problem = await ws.store_call(lambda store: data_digest(store, request)), None
        except SnapshotError as exc:  # e.g. HITL with no verdict newer than its last retrain
            data, problem = None, str(exc)
        recorded = record["steps"].get(step.kind) or {}
        names = await ws.store_call(lambda store: {v.name for v in store.list_model_versions()})
        if (
            recorded.get("version") in names
            and recorded.get("settings") == settings
            and data in (None, recorded.get("data"))
        ):
            self.versions[step.kind] = recorded["version"]
            self.say(f"{step.kind:<7} skipped: {recorded['version']} exists with the same settings and data")
            return None
        if problem is not None:
            return problem
        self.say(f"{step.kind:<7} training ...")
        outcome = await ws.run_job(request, self.reporter)
        if not outcome.succeeded or outcome.version is None:
            return f"job #{outcome.job_id} {outcome.state}: {outcome.error}"
        self.versions[step.kind] = outcome.version.name
        self.ran.append(step.kind)
        record["steps"][step.kind] = {
            "version": outcome.version.name,
            "job_id": outcome.job_id,
            "settings": settings,
            "data": data,
        }
        self.say(f"{step.kind:<7} {outcome.version.name} registered (job #{outcome.job_id})")
        return None
