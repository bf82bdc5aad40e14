"""The plain types the job modules share, below all of them so the imports between them point one way.

    JobRequest       what a training click (or an evaluation / score request) asks for   (jobs/requests.py)
    SnapshotRequest  what the snapshot of a job folder is written from                   (jobs/snapshot.py)
    SnapshotInfo, SnapshotError
    Curve, Panel     the plots a kind's job draws, as data (ui/train/loss_plot.py draws them)
    JobKindSpec      one row of the app's table of job kinds                             (jobs/kinds/)

Standard library only; no Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_REPLAY_FRACTION = 0.5  # replayed old examples per new example


@dataclass
class JobRequest:
    kind: str
    base_model: str
    system_prompt: str
    parent_version_id: int | None = None
    parent_adapter: str | None = None
    overrides: dict = field(default_factory=dict)
    trigger: str = "manual"  # "manual" or "auto"
    import_batch_ids: tuple[int, ...] = ()  # dpo / reward: imported pair batches chosen by the user
    reward_adapter: str | None = None  # ppo: the chosen reward model's adapter
    prompt_scope: str = "all"  # ppo: which train-split questions to answer
    max_prompts: int | None = None
    reward_version_id: int | None = None  # score: the reward model version that gives the scores
    eval_versions: tuple[str, ...] = ()  # evaluate: version names to evaluate ("base" for the base model)


class SnapshotError(Exception):
    """The job cannot start: nothing to learn from, or the data breaks a rule. The message says which."""


@dataclass(frozen=True)
class SnapshotRequest:
    kind: str  # a kind of jobs/kinds' APP_KINDS
    base_model: str
    system_prompt: str
    parent_adapter: str | None = None
    replay_fraction: float = DEFAULT_REPLAY_FRACTION
    seed: int = 0
    overrides: dict = field(default_factory=dict)  # hyperparameters for the training config
    import_batch_ids: tuple[int, ...] = ()  # dpo / reward: imported pair batches to learn from too
    reward_adapter: str | None = None  # ppo: the reward model's adapter folder
    prompt_scope: str = "all"  # ppo: "all" train-split questions or "unannotated" ones
    max_prompts: int | None = None  # ppo: a seeded sample of at most this many questions
    reward_version_id: int | None = None  # score: the reward version whose unscored answers go in
    eval_versions: tuple[str, ...] = ()  # evaluate: the version names to answer with ("base": the base model)


@dataclass(frozen=True)
class SnapshotInfo:
    n_train: int
    n_new: int
    n_replay: int
    cutoff: str


@dataclass(frozen=True)
class Curve:
    metric: str  # the name in the job's metric events (TRL's names are kept: "rewards/accuracies")
    colour: str
    legend: str
    dots: bool = False  # evaluation values come every few steps: show the points


@dataclass(frozen=True)
class Panel:
    title: str
    curves: tuple[Curve, ...]


EVAL_COLOUR = "#d9822b"


def train_and_eval(title: str, metric: str, colour: str, eval_legend: str = "evaluation") -> Panel:
    """A panel of ``metric`` while training and ``eval_<metric>`` at each evaluation (as dots)."""
    return Panel(
        title, (Curve(metric, colour, "training"), Curve(f"eval_{metric}", EVAL_COLOUR, eval_legend, True))
    )


LOSS_PANEL = train_and_eval("loss", "loss", "#2f6fb3")
LEARNING_RATE_PANEL = Panel("learning rate", (Curve("learning_rate", "#5c7080", "learning rate"),))

# write(store, request, job_dir) -> (info, provenance for snapshot.json): the kind's data/ files
SnapshotWriter = Callable[[Any, SnapshotRequest, Path], tuple[SnapshotInfo, dict]]
# config(request, provenance) -> config.json for the training program
ConfigBuilder = Callable[[SnapshotRequest, dict], dict]
# store_results(store, job_id=..., job_dir=...) -> count: a successful job's result files into the store
ResultReader = Callable[..., Any]


def trainer_config(request: SnapshotRequest, provenance: dict, **extra: Any) -> dict:
    """config.json of a kind that trains an adapter (sft, hitl, dpo, reward; ppo adds its reward adapter)."""
    return {
        "kind": request.kind,
        "base_model": request.base_model,
        "parent_adapter": request.parent_adapter,
        "output_name": "adapter",
        **extra,
        **request.overrides,
    }


@dataclass(frozen=True)
class JobKindSpec:
    """What the app knows about one job kind (its training side: training/kinds.py)."""

    name: str
    label: str  # "A  SFT": the research project's model letter, then the method
    write_snapshot: SnapshotWriter
    panels: tuple[Panel, ...] = ()  # the Train page's plots; () draws none (the kind trains nothing)
    config: ConfigBuilder = trainer_config
    short_label: str | None = None  # "A · SFT" in the comparison tables (kinds that answer questions)
    version_prefix: str | None = None  # "A-sft" -> versions A-sft-1, A-sft-2, ...; None: makes no version
    answers: bool = False  # its versions answer questions (can be activated, evaluated, compared)
    resumable: bool = False  # its program keeps checkpoints, so a stopped job can go on
    continues_from_active: bool = False  # starts from the active version's adapter
    uses_pair_batches: bool = False  # learns from imported preference-pair batches too
    store_results: ResultReader | None = None  # a kind that makes no version: what stores its results
    result_error: type[Exception] | None = None  # what store_results raises for a result it cannot store
