"""Training and model versions in the running app: the job queue, the Train and Models pages, auto-retrain,
and hot-swapping a version's adapter into the loaded model.

    verdict saved -> counter >= threshold and no job active -> hitl job (trigger "auto")
    Retrain now / SFT from dataset -> job request from the active version -> JobManager
    DPO / Reward model / PPO -> a dialog for the data to use (job_dialogs.py) -> job request -> JobManager
    job succeeded -> new version registered -> activated: adapter loaded onto the base, no reload
    before a job starts -> memory planner (ui/train/memory_planner.py): unload the answering model if the job
        needs its room; the queue idle -> reload it with the active version
    reward job succeeded, or Models > Score answers -> score job (jobs/scoring.py) -> scores_ready -> History
    Compare > Evaluate on held-out questions -> evaluate job -> results stored -> results_ready -> Compare
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from medalign_desktop.jobs.command import DEFAULT_LAUNCHER
from medalign_desktop.jobs.evaluation import DEFAULT_MAX_NEW_TOKENS, EvaluationError
from medalign_desktop.jobs.job_files import jobs_folder
from medalign_desktop.jobs.manager import JobManager
from medalign_desktop.jobs.memory_plan import kind_defaults
from medalign_desktop.jobs.requests import (
    RequestError,
)
from medalign_desktop.jobs.retrain_policy import RetrainPolicy
from medalign_desktop.jobs.scoring import ScoringError
from medalign_desktop.store import Store
from medalign_desktop.ui.core import operations as ops
from medalign_desktop.ui.core.context import AppContext
from medalign_desktop.ui.models.page import ModelsPage
from medalign_desktop.ui.train.job_dialogs import (
    ImportedBatch,
    PPOJobDialog,
    PreferenceJobDialog,
    RewardChoice,
)
from medalign_desktop.ui.train.memory_planner import MemoryPlanner
from medalign_desktop.ui.train.page import TrainPage


class TrainingController(QObject):
    status_message = Signal(str)  # one sentence for the status bar
    version_activated = Signal(str)  # the version now answering ("base model" when none)
    scores_ready = Signal(int)  # a score job's scores are stored (job id): History reloads
    # (sentence, problem) about an evaluation asked for: the Compare page shows it
    evaluation_status = Signal(str, bool)

    def __init__(
        self, ctx: AppContext, *, policy: RetrainPolicy, launcher: str = DEFAULT_LAUNCHER, parent=None
    ) -> None:
        super().__init__(parent)
        self.ctx, self.policy = ctx, policy
        self.overrides: dict = {}  # hyperparameters for every job's config.json (training/README.md)
        self.kind_overrides: dict[str, dict] = {}  # and per kind, e.g. {"ppo": {"max_new_tokens": 64}}
        self.job_dialog = None  # the open DPO / reward / PPO dialog, if any
        self.jobs = JobManager(ctx.store.call, jobs_folder(ctx.store.path), launcher=launcher, parent=self)
        self.train_page = TrainPage(ctx, self.jobs)
        self.models_page = ModelsPage(ctx)
        self.planner = MemoryPlanner(
            ctx, self.jobs, restore_version=self.restore_active_version, settings_for=self.overrides_for,
            parent=self,
        )  # fmt: skip
        self.train_page.add_plan_widget(self.planner.panel)
        self.planner.status_message.connect(self.status_message)
        self.train_page.training_requested.connect(self.request_training)
        self.models_page.activate_requested.connect(
            lambda version: ctx.tasks.start(self.activate(version), "Activating the model version")
        )
        self.jobs.version_ready.connect(
            lambda version: ctx.tasks.start(self._on_version_ready(version), "Activating the new version")
        )
        self.jobs.job_changed.connect(lambda _job: self.ctx.tasks.start(self._after_job_change(), "Jobs"))
        self.models_page.score_requested.connect(self._on_score_requested)
        self.jobs.results_ready.connect(self._on_results_ready)
        # the manager stores a job's outcome itself (ctx.store.call): the pages hear of it from here
        self.jobs.results_ready.connect(lambda _job_id, kind: ctx.store.announce(ops.after_job(kind)))
        self.jobs.version_ready.connect(lambda version: ctx.store.announce(ops.after_job(version.kind)))

    async def start(self) -> None:
        """After the database opened: fail jobs a crash left running, then show the lists."""
        stale = await self.jobs.recover()
        if stale:
            self.status_message.emit(
                f"{len(stale)} training job(s) were interrupted when the app last closed."
            )
        self.train_page.refresh()
        self.models_page.refresh()

    async def restore_active_version(self) -> str | None:
        """After the base model loaded: put the workspace's active version's adapter on it again."""
        active = await self.ctx.store.run(Store.active_model_version)
        if active is None or not active.adapter_path:
            return None
        await self.ctx.engine.activate_adapter(active.adapter_path, active.name)
        self.ctx.model_version = active.name
        return active.name

    # ------------------------------------------------------------------------------------- training
    def request_training(self, kind: str, trigger: str = "manual") -> None:
        if kind in ("dpo", "reward", "ppo"):
            self.ctx.tasks.start(self.choose_job_data(kind), "Preparing the training choices")
        else:
            self.ctx.tasks.start(self._submit(kind, trigger), "Starting a training job")

    async def choose_job_data(self, kind: str) -> None:
        """Read what the job could learn from, then ask which (the dialog is modal but never blocks)."""
        if kind == "ppo":
            rewards, n_all, n_unannotated = await self.ctx.store.run(ops.ppo_job_inputs)
            choices = [RewardChoice(v.id, v.name, v.metrics.get("eval_accuracy")) for v in rewards]
            dialog = PPOJobDialog(choices, n_all, n_unannotated, self.train_page)
        else:
            n_feedback, batches = await self.ctx.store.run(ops.preference_job_inputs)
            imported = [
                ImportedBatch(b["id"], b["source_path"], b.get("n_imported") or 0, b["created_at"])
                for b in batches
            ]
            dialog = PreferenceJobDialog(kind, n_feedback, imported, self.train_page)
        dialog.accepted.connect(
            lambda: self.ctx.tasks.start(self._submit(kind, "manual", **dialog.options()), "Starting a job")
        )
        dialog.finished.connect(lambda _result: setattr(self, "job_dialog", None))
        self.job_dialog = dialog
        dialog.open()

    async def _submit(self, kind: str, trigger: str, **options) -> int | None:
        base_model = self.planner.base_model_path()  # also while the model is unloaded for a job
        if base_model is None:
            raise ValueError("Load a model first: training starts from the loaded base model.")
        try:
            request = await self.ctx.store.run(
                ops.training_request, kind=kind, base_model=base_model,
                system_prompt=self.ctx.settings.sampling().system_prompt, trigger=trigger,
                overrides=self.overrides_for(kind), **options,
            )  # fmt: skip
        except RequestError as exc:
            self.status_message.emit(str(exc))
            return None
        job_id = await self.jobs.submit(request)
        self.train_page.select_job(job_id)
        what = "Retraining automatically" if trigger == "auto" else "Training job started"
        # the memory planner's sentence (it names the job) rather than both: the status bar is one line
        self.status_message.emit(self.planner.notes.get(job_id) or f"{what} (job #{job_id}).")
        return job_id

    def overrides_for(self, kind: str) -> dict:
        """The common overrides this kind's config knows (PPO has no batch size per device, ...), then its own."""
        known = kind_defaults(kind)
        patience = self.ctx.settings.early_stopping_patience  # the Train page's "Stop early" choice
        chosen = {"early_stopping_patience": patience} if patience else {}
        common = {key: value for key, value in {**chosen, **self.overrides}.items() if key in known}
        return {**common, **self.kind_overrides.get(kind, {})}

    async def on_verdict_saved(self) -> None:
        """The auto-retrain rule, checked after every verdict."""
        count = await self.ctx.store.run(Store.samples_since_last_retrain)
        self.train_page.show_counter(count)
        if (
            self.policy.should_retrain(count, job_active=self.jobs.busy)
            and self.ctx.engine.loaded is not None
        ):
            await self._submit("hitl", "auto")

    async def _after_job_change(self) -> None:
        if not self.jobs.busy:
            self.models_page.refresh()

    # ------------------------------------------------------------------------------------- scoring
    def _on_score_requested(self, version) -> None:
        self.ctx.settings.scoring_reward_version = version.id  # History shows this reward model's scores
        self.scores_ready.emit(0)  # the column changes model at once; scores follow when the job ends
        self.ctx.tasks.start(self.score_answers(version.id), "Scoring answers")

    async def score_answers(self, reward_version_id: int | None = None) -> int | None:
        """Start a score job for the answers the reward version (None: the newest) has not scored yet."""
        base_model = self.planner.base_model_path()
        try:
            request = await self.ctx.store.run(
                ops.score_request, base_model=base_model or "",
                system_prompt=self.ctx.settings.sampling().system_prompt, reward_version_id=reward_version_id,
            )  # fmt: skip
        except ScoringError as exc:
            self.status_message.emit(str(exc))
            return None
        if not request.base_model:
            self.status_message.emit("Load a model first: the reward model scores on its base model.")
            return None
        if await self.ctx.store.run(ops.unscored_count, request.reward_version_id) == 0:
            self.status_message.emit("Every answer is scored already by this reward model.")
            return None
        request.overrides.update(self.kind_overrides.get("score", {}))
        job_id = await self.jobs.submit(request)
        self.status_message.emit(f"Scoring answers with the reward model (job #{job_id}).")
        return job_id

    # ------------------------------------------------------------------------------------- evaluation
    def request_evaluation(self, version_names: list[str]) -> None:
        """Compare page: evaluate these versions ("base": the base model alone) on the held-out questions."""
        self.ctx.tasks.start(self.submit_evaluation(version_names), "Starting an evaluation")

    async def submit_evaluation(self, version_names: list[str]) -> int | None:
        """Start an `evaluate` job (jobs/evaluation.py checks the versions and the held-out questions);
        ``evaluate`` kind overrides (``max_new_tokens``, ``batch_size``, ...) go into its config."""
        base_model = self.planner.base_model_path()
        if base_model is None:
            self.evaluation_status.emit(
                "Load a model first: the versions answer on the loaded base model.", True
            )
            return None
        overrides = dict(self.kind_overrides.get("evaluate", {}))
        try:
            request = await self.ctx.store.run(
                ops.evaluation_request, tuple(version_names), base_model,
                self.ctx.settings.sampling().system_prompt,
                overrides.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS),
                reward_version_id=self.ctx.settings.scoring_reward_version,
            )  # fmt: skip
        except EvaluationError as exc:
            self.evaluation_status.emit(str(exc), True)
            return None
        request.overrides.update(overrides)
        job_id = await self.jobs.submit(request)
        self.train_page.select_job(job_id)
        message = (
            f"Evaluating {len(request.eval_versions)} version(s) on the held-out questions (job #{job_id})"
        )
        self.status_message.emit(f"{message}.")
        self.evaluation_status.emit(f"{message}: progress is on the Train page (Ctrl+3).", False)
        return job_id

    def _on_results_ready(self, job_id: int, kind: str) -> None:
        if kind == "evaluate":
            self.status_message.emit(
                f"Evaluation finished (job #{job_id}); the Compare page shows the results."
            )
        if kind == "score":
            self.status_message.emit(f"Answers scored (job #{job_id}); History shows the scores.")
            self.scores_ready.emit(job_id)

    # ------------------------------------------------------------------------------------- versions
    async def _on_version_ready(self, version) -> None:
        if version.kind == "reward":  # a reward model never answers; it scores the answers
            self.status_message.emit(f"{version.name} is trained; scoring the answers with it.")
            await self.score_answers(version.id)
            return
        await self.activate(version)
        self.status_message.emit(f"{version.name} is trained and now answers.")

    async def activate(self, version) -> None:
        """Hot-swap ``version`` (None: the base model alone) into the loaded model and mark it active.
        While the model is unloaded for a job only the choice is stored; the reload puts it on."""
        await self.planner.wait_reloaded()  # a reload under way finishes first: the version goes onto it
        loaded = self.ctx.engine.loaded
        if loaded is not None:
            if version is None:
                await self.ctx.engine.activate_adapter(None, None)
            else:
                await self.ctx.engine.activate_adapter(version.adapter_path, version.name)
        self.ctx.model_version = version.name if version else (loaded.label if loaded else None)
        await self.ctx.store.run(Store.set_active_model_version, version.id if version else None)
        name = version.name if version else "base model"
        self.models_page.refresh()
        self.version_activated.emit(name)

    async def shutdown(self) -> None:
        await self.jobs.shutdown()
