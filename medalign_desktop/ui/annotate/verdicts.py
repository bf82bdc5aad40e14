"""The Annotate page's verdicts (accept, edit, reject, undo) and the held-out toggle.

A mixin of :class:`medalign_desktop.ui.annotate.page.AnnotatePage`, which provides the state (phase, prompt, generation, the
flows) these methods use. A verdict the database refuses because it is busy waits in the store service's
saving queue (saving_queue.py): the page says "Saving…" and moves on, and says "Saved" once it is stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox

from medalign_desktop.store import Store, StoreValidationError
from medalign_desktop.ui.annotate.session import Phase
from medalign_desktop.ui.core import dialogs, labels
from medalign_desktop.ui.core.saving_queue import BUSY_TEXT

HELD_OUT_TIP = (
    "Hold this question out: it can still be answered and reviewed, but no training job learns from it; "
    "it is kept for evaluating model versions on the Compare page  [H]"
)


class AnnotateVerdicts:
    """Verdicts and holding out, for AnnotatePage (which supplies ctx, phase, set_phase, run_flow ...)."""

    # ------------------------------------------------------------------ held out
    def _add_held_out_toggle(self) -> None:
        """The question's held-out state, in the mode row; H or a click toggles it."""
        self.held_out_toggle = QCheckBox("Held out  [H]")
        self.held_out_toggle.setObjectName("heldOutToggle")
        self.held_out_toggle.setToolTip(HELD_OUT_TIP)
        self.held_out_toggle.setFocusPolicy(Qt.FocusPolicy.TabFocus)  # single-letter keys stay with the page
        self.held_out_toggle.clicked.connect(lambda checked: self.toggle_held_out(checked))
        # At the right end of the second row (the mode row): the top bar has no room left at 1280 px.
        self.compare_options.layout().addWidget(self.held_out_toggle)

    def _show_held_out(self) -> None:
        self.held_out_toggle.setChecked(self.prompt is not None and self.prompt.split == "held_out")
        self.held_out_toggle.setEnabled(self.prompt is not None)
        self.question.meta.setText(self.session.question_meta())

    def toggle_held_out(self, held: bool | None = None) -> asyncio.Task | None:
        """Hold the question on screen out (``held``; None flips it). Not a flow: an answer being written
        goes on."""
        prompt = self.prompt
        if prompt is None or not self.ctx.store.is_open:
            self._show_held_out()
            return None
        held = prompt.split != "held_out" if held is None else held
        split = "held_out" if held else "train"

        async def flow() -> None:
            try:
                await self.ctx.store.run(Store.set_split, [prompt.id], split)
                if self.prompt is not None and self.prompt.id == prompt.id:
                    self.prompt = dataclasses.replace(self.prompt, split=split)
                    self.show_feedback(
                        "Held out: kept for evaluation, never trained on"
                        if held
                        else "Back among the training questions"
                    )
            finally:
                self._show_held_out()

        return self.ctx.tasks.start(flow(), "Holding the question out")

    # ------------------------------------------------------------------ verdicts
    def ensure_annotator(self) -> bool:
        if self.ctx.annotator:
            return True
        name = dialogs.ask_annotator_name(self.window())
        if name:
            self.ctx.settings.annotator = name
        return bool(name)

    def _verdict(self, verdict: str, **fields) -> None:
        if self.generation_id is None or not self.ensure_annotator():
            return
        # Capture everything now and block further clicks at once: a second quick press must not
        # land on the next question's answer, which the clinician has not read yet.
        back_to, captured = self.phase, dict(fields)
        captured.update(
            generation_id=self.generation_id,
            rating=self.extras.rating.value(),
            safety_flags=self.extras.flags(),
        )
        self.set_phase(Phase.SAVING)
        self.run_flow(lambda: self._save_verdict(verdict, back_to, **captured), "Saving the verdict")

    async def _save_verdict(self, verdict: str, back_to: Phase, *, generation_id: int, **fields) -> None:
        label = labels.verdict_label(verdict).lower()
        save = self.ctx.store.saving.save(
            Store.record_verdict, generation_id, verdict, annotator=self.ctx.annotator,
            description=f"the verdict ({label})", on_saved=lambda _: self.saved_later(verdict), **fields,
        )  # fmt: skip
        await self.save_then_next(save, back_to, self.answer, verdict, lambda _: f"Saved: {label}")

    async def save_then_next(
        self, save: Awaitable[tuple[bool, Any]], back_to: Phase, editor: Any, saved: str,
        on_stored: Callable[[Any], str],
    ) -> None:  # fmt: skip
        """Await a verdict's or a comparison's save (``SavingQueue.save``: a busy database queues it, to be
        saved later in order, and the clinician moves on). A refused value is said and the page goes back to
        ``back_to``; otherwise ``editor``'s edit ends, ``on_stored(result)`` (when stored now) gives the
        feedback, ``verdict_saved`` carries ``saved``, and the next question is shown."""
        try:
            stored, result = await save
        except StoreValidationError as exc:
            self.show_feedback(exc.message[:1].upper() + exc.message[1:], problem=True)
            self.set_phase(back_to)
            return
        if back_to is Phase.EDITING:
            editor.end_edit(restore=False)
        self.setFocus()
        if stored:
            self.show_feedback(on_stored(result))
            self.verdict_saved.emit(saved)
            await self.refresh_counter()
        self.cursor.advance()
        await self.show_current(generate=True)

    def saved_later(self, verdict: str) -> None:
        """A verdict queued while the database was busy is stored now."""
        self.verdict_saved.emit(verdict)
        self.ctx.tasks.start(self.refresh_counter(), "Counting the new samples")

    def _saving_state(self, text: str) -> None:
        if text == BUSY_TEXT:  # stays until everything waiting is stored
            self._feedback_timer.stop()
            self.actions.feedback.setText(text)
        else:
            self.show_feedback(text)

    def _start_edit(self) -> None:
        if self.phase is Phase.READY:
            self.set_phase(Phase.EDITING)
            self.answer.begin_edit()

    def _save_edit(self) -> None:
        if self.compare_mode:
            self.compare_flow.save_edit()
            return
        if self.phase is not Phase.EDITING:
            return
        text = self.answer.edited_text()
        if not text.strip():
            self.show_feedback(
                "The edited answer is empty; type the corrected answer or press Esc.", problem=True
            )
            return
        self._verdict("edit", edited_text=text)

    def _start_reject(self) -> None:
        if self.phase is Phase.READY:
            self.set_phase(Phase.REJECTING)
            self.reject_panel.open_panel()

    def _confirm_reject(self, reason: str, note: str) -> None:
        if self.phase is Phase.REJECTING:
            self._verdict("reject", reject_reason=reason, reject_note=note or None)

    def _escape(self) -> None:
        if self.compare_mode and self.compare_flow.escape():
            return
        if self.phase is Phase.STREAMING:
            self.ctx.engine.stop()
        elif self.phase is Phase.EDITING:
            self.answer.end_edit(restore=True)
            self.set_phase(Phase.READY)
            self.setFocus()
        elif self.phase is Phase.REJECTING:
            self.set_phase(Phase.READY)
            self.setFocus()

    def _undo(self) -> None:
        if self.phase in (Phase.EDITING, Phase.SAVING, Phase.PICKING) or not self.ctx.annotator:
            return
        if self.ctx.store.saving.pending:  # the last verdict is not stored yet: nothing to withdraw
            self.show_feedback("Undo waits until the verdicts being saved are stored", problem=True)
            return
        if self.compare_mode:
            self.run_flow(self.compare_flow.undo_flow, "Undoing the last comparison")
        else:
            self.run_flow(self._undo_flow, "Undoing the last verdict")

    async def _undo_flow(self) -> None:
        feedback_id = await self.ctx.store.run(Store.undo_last_verdict, self.ctx.annotator)
        if feedback_id is None:
            self.show_feedback("Nothing to undo")
            self.recover()
            return
        detail = await self.ctx.store.run(Store.feedback_detail, feedback_id)
        await self.refresh_counter()
        self.cursor.go_to(detail.prompt_id)
        await self.show_current(generate=False)
        self.answer.set_text(detail.original_text)
        self.answer.status.setText("The answer you judged before")
        self.extras.show_values(detail.safety_flags, detail.rating)  # as the clinician left them
        self.generation_id = detail.generation_id
        self.set_phase(Phase.READY)
        self.show_feedback(f"Undone: {labels.verdict_label(detail.verdict).lower()} withdrawn")
