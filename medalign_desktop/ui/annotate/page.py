"""The Annotate page: one question at a time, the model's answer streaming in, a verdict by keyboard.

Flow: show the current question -> generate -> store the generation -> wait for a verdict -> store the
verdict -> next question, generating automatically. Every step that touches the model or the database is
a coroutine run through the services, one flow at a time: starting a new flow (skip, regenerate, undo,
a typed question) first stops the answer being written and waits for the previous flow to finish.

Compare mode (C switches) shows two answers instead and asks which is better; its steps live in
:mod:`medalign_desktop.ui.annotate.compare_mode`, and this page routes the keys and the shared parts (queue, flags, undo) to it.

Verdicts (and undo) and the held-out toggle live in :mod:`medalign_desktop.ui.annotate.verdicts`, a mixin of this page.

H holds the question on screen out (or puts it back): a held-out question can still be answered and
reviewed here, but no training job learns from it; it is kept for evaluating versions (Compare page).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QWidget

from medalign_desktop.engine.generation import ContextTooLong
from medalign_desktop.store import Store
from medalign_desktop.ui.annotate.compare_mode import CompareFlow
from medalign_desktop.ui.annotate.session import AnnotateSession, Phase, session_field
from medalign_desktop.ui.annotate.verdicts import AnnotateVerdicts
from medalign_desktop.ui.annotate.view import AnnotateView, describe_result
from medalign_desktop.ui.core import dialogs
from medalign_desktop.ui.core.context import AppContext
from medalign_desktop.ui.core.operations import Change
from medalign_desktop.ui.core.widgets import typing_in_text_field

__all__ = ["AnnotatePage", "Phase", "typing_in_text_field"]

FEEDBACK_MS = 4000
EMPTY_QUEUE_TEXT = (
    "No questions are waiting.\n\nImport a question file with File > Import questions..., switch the "
    "filter to 'All questions', or type your own question below."
)
NO_MODEL_TEXT = "The answer will appear here once the model has loaded."
TOO_LONG_CAPTION = "Not answered: the question is longer than the model reads"


class AnnotatePage(AnnotateVerdicts, AnnotateView):
    answer_ready = Signal()  # a generation is stored and the verdict buttons are live
    verdict_saved = Signal(str)  # the verdict ("comparison" for a comparison), after the store call returned
    phase_changed = Signal(object)
    # the session's fields, as the verdicts, compare mode and the tests use them
    cursor = session_field("cursor")
    phase = session_field("phase")
    prompt = session_field("prompt")
    generation_id = session_field("generation_id")

    def __init__(
        self, context: AppContext, parent: QWidget | None = None, *, rng: random.Random | None = None
    ) -> None:
        super().__init__(context.settings, parent)
        self.ctx = context
        self.rng = rng or random.Random()  # compare mode's answer order (and seeds); tests inject their own
        self.session = AnnotateSession()  # the queue, the phase and what is shown: plain Python (session.py)
        self.no_model_text = NO_MODEL_TEXT  # shown where the answer goes while no model can answer
        self._flow: asyncio.Task | None = None
        self.compare_flow = CompareFlow(self)
        self._add_held_out_toggle()
        self._connect()
        self._install_shortcuts()
        self._feedback_timer = QTimer(self, singleShot=True, interval=FEEDBACK_MS)
        self._feedback_timer.timeout.connect(lambda: self.actions.feedback.clear())
        self.set_phase(Phase.EMPTY)

    def _connect(self) -> None:
        a = self.actions
        a.accept.clicked.connect(lambda: self._verdict("accept"))
        a.edit.clicked.connect(self._start_edit)
        a.reject.clicked.connect(self._start_reject)
        a.skip.clicked.connect(lambda: self.run_flow(self._skip_flow, "Skipping"))
        a.regenerate.clicked.connect(lambda: self.run_flow(self._generate, "Generating an answer"))
        a.stop.clicked.connect(self.ctx.engine.stop)
        self.answer.save_edit.connect(self._save_edit)
        self.answer.cancel_edit.connect(self._escape)
        self.reject_panel.confirmed.connect(self._confirm_reject)
        self.reject_panel.cancelled.connect(self._escape)
        self.ask_box.returnPressed.connect(self._ask)
        self.ask_button.clicked.connect(self._ask)
        self.queue_filter.currentIndexChanged.connect(self._queue_options_changed)
        self.held_out.toggled.connect(self._queue_options_changed)
        self.settings_button.clicked.connect(self.open_sampling_dialog)
        self.ctx.engine.text_arrived.connect(self._text_arrived)
        self.ctx.engine.context_capped.connect(self._context_capped)
        self.choices.chosen.connect(self.compare_flow.choose)
        self.choices.edit_requested.connect(self.compare_flow.start_pick)
        self.compare.save_edit.connect(self._save_edit)
        self.compare.cancel_edit.connect(self._escape)
        self.mode_box.currentIndexChanged.connect(self._mode_changed)
        self.ctx.store.saving.state_changed.connect(self._saving_state)
        self.compare_options.changed.connect(self._compare_options_changed)
        self.ctx.store.changed.connect(self._store_changed)

    def _install_shortcuts(self) -> None:
        letters = {"A": self.actions.accept, "R": self.actions.reject, "S": self.actions.skip,
                   "G": self.actions.regenerate, "T": self.choices.buttons["tie"],
                   "B": self.choices.buttons["both_bad"]}  # fmt: skip
        for key, button in letters.items():
            self._shortcut(key, lambda b=button: None if typing_in_text_field() else b.click())
        self._shortcut("E", lambda: None if typing_in_text_field() else self._edit_key())
        self._shortcut("C", lambda: None if typing_in_text_field() else self._toggle_mode())
        self._shortcut("H", lambda: None if typing_in_text_field() else self.toggle_held_out())
        # 1 and 2 only in compare mode: in single mode the digits pick a reject reason.
        self._digit_keys = [
            self._shortcut(key, lambda c=choice: self.compare_flow.choose(c))
            for key, choice in (("1", "first"), ("2", "second"))
        ]
        self._shortcut("Esc", self._escape)
        self._shortcut("Ctrl+Return", self._save_edit)
        self._shortcut("Ctrl+Enter", self._save_edit)
        self._shortcut("Ctrl+Z", self._undo)

    # ------------------------------------------------------------------ state
    def set_phase(self, phase: Phase) -> None:
        self.phase = phase
        ready = phase is Phase.READY
        have_model = self.ctx.engine.loaded is not None
        compare = self.compare_mode
        a = self.actions
        for button in a.verdict_buttons:
            button.setEnabled(ready and not compare)
        self.choices.set_live(ready=ready and compare, picking=phase is Phase.PICKING)
        for shortcut in self._digit_keys:
            shortcut.setEnabled(compare)
        a.skip.setEnabled(phase in (Phase.READY, Phase.STREAMING, Phase.WAITING))
        a.regenerate.setEnabled(have_model and phase in (Phase.READY, Phase.STREAMING, Phase.WAITING))
        a.stop.setEnabled(phase is Phase.STREAMING)
        self.extras.setEnabled(phase in (Phase.READY, Phase.EDITING, Phase.REJECTING, Phase.PICKING))
        can_switch = phase not in (Phase.SAVING, Phase.EDITING, Phase.REJECTING, Phase.PICKING)
        self.ask_box.setEnabled(have_model and can_switch)
        self.ask_button.setEnabled(have_model and can_switch)
        for widget in (self.queue_filter, self.held_out, self.mode_box, self.compare_options):
            widget.setEnabled(can_switch)
        self.held_out_toggle.setEnabled(self.prompt is not None)
        self.reject_panel.setVisible(phase is Phase.REJECTING)
        self.position.setText(self.cursor.position_text())
        self.phase_changed.emit(phase)

    def show_feedback(self, text: str, *, problem: bool = False) -> None:
        self.actions.feedback.setProperty("problem", problem)
        self.actions.feedback.style().unpolish(self.actions.feedback)
        self.actions.feedback.style().polish(self.actions.feedback)
        self.actions.feedback.setText(text)
        self._feedback_timer.start()

    # ------------------------------------------------------------------ running flows
    def run_flow(self, make_flow: Callable[[], Awaitable[None]], context: str) -> asyncio.Task:
        """Start a flow after stopping the current answer and letting the previous flow finish."""
        previous = self._flow

        async def flow() -> None:
            if previous is not None and not previous.done():
                self.compare_flow.aborted = True  # the previous flow writes no further answer
                self.ctx.engine.stop()
                await asyncio.wait({previous})
            self.compare_flow.aborted = False
            try:
                await make_flow()
            except Exception:
                self.recover()
                raise

        self._flow = self.ctx.tasks.start(flow(), context)
        return self._flow

    def recover(self) -> None:
        """After a failed flow, fall back to a state the clinician can act from."""
        if self.compare_mode:
            editing, shown = self.compare.editing_slot is not None, self.compare_flow.pair is not None
            self.set_phase(Phase.EDITING if editing else Phase.READY if shown else Phase.WAITING)
        elif not self.answer.text.isReadOnly():  # a failed edit save: keep the clinician's text editable
            self.set_phase(Phase.EDITING)
        elif self.phase is not Phase.REJECTING:
            self.set_phase(Phase.READY if self.generation_id else Phase.WAITING)

    async def wait_idle(self) -> None:
        """Wait for the running flow (tests and shutdown)."""
        while self._flow is not None and not self._flow.done():
            await asyncio.wait({self._flow})

    # ------------------------------------------------------------------ queue and questions
    def model_ready(self) -> None:
        """The model has loaded: answer the question on screen."""
        if self.prompt is not None and self.phase in (Phase.WAITING, Phase.EMPTY, Phase.READY):
            self.run_flow(self._generate, "Generating an answer")
        else:
            self.set_phase(self.phase)

    def model_unloaded(self, reason: str) -> None:
        """The answering model was unloaded to make room for a training job: say so, and why, where the
        answer would go; an answer already on screen can still be reviewed."""
        self.no_model_text = reason
        if self.phase is Phase.WAITING:
            self._clear_answers(reason)
        self.show_feedback("Answering model unloaded")  # the reason is too long for that line
        self.set_phase(self.phase)  # typed questions and Regenerate wait for the model

    def model_back(self) -> None:
        """The answering model is loaded again: answer the question waiting on screen, if any."""
        self.no_model_text = NO_MODEL_TEXT
        if self.prompt is not None and self.phase is Phase.WAITING:
            self.run_flow(self._generate, "Generating an answer")
        else:
            self.set_phase(self.phase)

    def reload_queue(self) -> asyncio.Task:
        return self.run_flow(self._reload_queue, "Loading the question queue")

    async def _reload_queue(self) -> None:
        if self.compare_mode:
            await self.compare_flow.refresh_versions()
        self.cursor.reset(await self._read_queue())
        await self.show_current(generate=True)
        await self.refresh_counter()

    async def _read_queue(self) -> list[int]:
        settings = self.ctx.settings
        return await self.ctx.store.run(Store.queue, mode=settings.queue_mode, include_held_out=settings.include_held_out)

    def _store_changed(self, changes: Change) -> None:
        """Another process wrote (``medalign import`` while the app runs): new questions join the end of
        the queue, shown at once if the queue had run out; the counter is read again."""
        if changes & Change.EXTERNAL and self.ctx.store.is_open:
            self.ctx.tasks.start(self._take_outside_questions(), "Reading new questions")

    async def _take_outside_questions(self) -> None:
        if self.session.queue_grew(await self._read_queue()):
            self.run_flow(lambda: self.show_current(generate=True), "Showing the next question")
        else:
            self.position.setText(self.cursor.position_text())
        await self.refresh_counter()

    def _queue_options_changed(self) -> None:
        self.ctx.settings.queue_mode = self.queue_filter.currentData()
        self.ctx.settings.include_held_out = self.held_out.isChecked()
        self.reload_queue()

    async def show_current(self, *, generate: bool) -> None:
        self.extras.reset()
        self.session.clear_answers()
        prompt_id = self.cursor.current
        if prompt_id is None:
            self.prompt = None
            self._show_held_out()
            self.question.show_message(EMPTY_QUEUE_TEXT)
            self._clear_answers()
            self.set_phase(Phase.EMPTY)
            return
        self.prompt = await self.ctx.store.run(Store.get_prompt, prompt_id)
        self.question.show_prompt(
            self.prompt.text, self.prompt.reference_answer, self.prompt.answer_key, self.session.question_meta()
        )
        self._show_held_out()
        if generate and self.ctx.engine.loaded is not None:
            await self._generate()
        else:
            self._clear_answers(self.no_model_text)
            self.set_phase(Phase.WAITING)

    def _clear_answers(self, placeholder: str = "") -> None:
        self.answer.clear(placeholder)
        self.answer.status.clear()
        self.compare.clear(placeholder)

    async def _skip_flow(self) -> None:
        self.cursor.advance()
        await self.show_current(generate=True)

    async def refresh_counter(self) -> None:
        count = await self.ctx.store.run(Store.samples_since_last_retrain)
        self.samples.setText(f"{count:,} new sample{'s' if count != 1 else ''} since last retrain")

    # ------------------------------------------------------------------ generating
    async def _generate(self) -> None:
        prompt = self.prompt
        if prompt is None or self.ctx.engine.loaded is None:
            return
        if self.compare_mode:
            await self.compare_flow.generate(prompt)
            return
        settings = self.ctx.settings.sampling()
        self.generation_id = None
        self.answer.clear()
        self.answer.status.setText("Writing...  Esc stops")
        self.set_phase(Phase.STREAMING)
        try:
            result = await self.ctx.engine.generate(prompt.text, settings)
        except ContextTooLong as exc:  # refused before generating: say why where the answer would be
            self.show_too_long(str(exc))
            return
        self.answer.set_text(result.text)  # the authoritative text, whatever the queued pieces did
        self.set_phase(Phase.SAVING)
        # The version is the adapter that actually wrote this answer (versions are loaded under their own
        # names), not whatever is active by the time the answer is saved: a hot-swap may happen meanwhile.
        version = result.adapter or result.model_label
        self.generation_id = await self.ctx.store.run(
            Store.add_generation, prompt.id, result.text, model_version=version,
            settings=result.settings.to_dict(), time_to_first_token_s=result.time_to_first_token_s,
            tokens_per_s=result.tokens_per_s, n_tokens=result.n_tokens, finish_reason=result.finish_reason,
        )  # fmt: skip
        capped = result.settings.max_new_tokens < settings.max_new_tokens
        self.answer.status.setText(
            describe_result(result) + (" · shortened to fit the model" if capped else "")
        )
        self.set_phase(Phase.READY)
        self.answer_ready.emit()

    def show_too_long(self, message: str) -> None:
        self._clear_answers(message)
        self.answer.status.setText(TOO_LONG_CAPTION)
        self.show_feedback(TOO_LONG_CAPTION, problem=True)
        self.set_phase(Phase.WAITING)  # skip, or shorten and ask again; no verdict on an unanswered question

    def _context_capped(self, number: int, warning: str) -> None:
        if number == self.ctx.engine.current_generation:  # shown while the (shorter) answer is written
            self.answer.status.setText("Writing a shorter answer...  Esc stops")
            self.show_feedback(warning, problem=True)

    def _text_arrived(self, number: int, piece: str) -> None:
        if number == self.ctx.engine.current_generation and self.phase is Phase.STREAMING:
            if self.compare_mode:
                self.compare_flow.text_arrived(piece)
            else:
                self.answer.append(piece)

    # ------------------------------------------------------------------ compare mode
    def _edit_key(self) -> None:
        if self.compare_mode:
            self.compare_flow.start_pick()
        else:
            self.actions.edit.click()

    def _toggle_mode(self) -> None:
        if self.mode_box.isEnabled():
            self.mode_box.setCurrentIndex(1 - self.mode_box.currentIndex())

    def _mode_changed(self) -> None:
        compare = self.compare_mode
        self.ctx.settings.annotate_mode = "compare" if compare else "single"
        self.show_compare(compare)
        self.setFocus()
        self.set_phase(self.phase)
        if self.ctx.store.is_open:
            self.run_flow(self._reload_current, "Switching the annotation mode")

    def _compare_options_changed(self) -> None:
        self.ctx.settings.compare_source = self.compare_options.current_source()
        self.ctx.settings.compare_versions = self.compare_options.versions()
        self.setFocus()
        if self.ctx.store.is_open:
            self.run_flow(self._reload_current, "Generating two answers")

    async def _reload_current(self) -> None:
        """Show the question on screen again in the current mode (and answer it)."""
        if self.compare_mode:
            await self.compare_flow.refresh_versions()
        if self.cursor.current is not None:
            await self.show_current(generate=True)

    # ------------------------------------------------------------------ typed questions and settings
    def _ask(self) -> None:
        text = self.ask_box.text().strip()
        if not text or not self.ask_box.isEnabled():
            return
        self.ask_box.clear()
        self.setFocus()
        self.run_flow(lambda: self._ask_flow(text), "Asking your question")

    async def _ask_flow(self, text: str) -> None:
        prompt_id = await self.ctx.store.run(Store.add_prompt, text, source="typed")
        self.cursor.go_to(prompt_id)
        await self.show_current(generate=True)

    def open_sampling_dialog(self) -> dialogs.SamplingDialog:
        dialog = dialogs.SamplingDialog(self.ctx.settings.sampling(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        dialog.accepted.connect(lambda: self._apply_sampling(dialog))
        dialog.open()
        return dialog

    def _apply_sampling(self, dialog: dialogs.SamplingDialog) -> None:
        try:
            settings = dialog.settings()
        except ValueError as exc:
            self.ctx.errors.report(exc, "Generation settings")
            return
        self.ctx.settings.set_sampling(settings)
        self.settings_button.setToolTip(dialogs.describe_sampling(settings))
