"""Compare mode: two answers to one question, shown as Answer 1 / Answer 2 in random order, and a choice.

    draw the order -> write Answer 1, then Answer 2 -> store both generations -> wait for a choice:
    1 / 2 (that one is better), T (tie), B (both bad), or E, then 1 / 2, then Ctrl+Enter (correct the
    better one) -> record_comparison -> next question.  Ctrl+Z withdraws this session's last comparison.

The two answers come from two *sources* in a fixed order: two seeds of the active version, or versions X
and Y. The generations are stored in that order; the random draw decides only which is shown first
(``swapped``: Answer 1 is the second source's answer, the second generation stored). Answers are written
in the order shown, so the order of writing gives nothing away, and nothing that identifies an answer
(version, seed, speed) is shown until the choice is saved.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from medalign_desktop.engine import GenerationResult, SamplingSettings
from medalign_desktop.store import ModelVersion, Prompt, Store
from medalign_desktop.ui.annotate.host import AnnotateHost
from medalign_desktop.ui.annotate.session import Phase, ShownPair
from medalign_desktop.ui.core.two_answers import CHOICE_LABELS, COMPARE_HINT, PICK_HINT, SLOT_CHOICES

SEED_LIMIT = 2**31 - 2  # a drawn seed and the seed after it both fit a 32-bit signed integer
GREEDY_PROBLEM = (
    "Two samples need sampling: with temperature 0 (greedy) the model writes the same answer twice. "
    "Raise the temperature in Generation settings and press G, or compare two model versions."
)


class CompareSetupError(ValueError):
    """The two answers cannot be generated as chosen (a plain sentence for the clinician)."""


@dataclass(frozen=True)
class AnswerSource:
    """Where one of the two answers comes from."""

    settings: SamplingSettings
    switch: bool = False  # versions mode: answer with ``version``, then put the active adapter back
    version: ModelVersion | None = None  # None with ``switch``: the base model alone


def blind_caption(result: GenerationResult) -> str:
    """An answer's caption that does not identify it: its length and how it ended, no speed."""
    ending = {"length": " · hit the token limit", "cancelled": " · stopped"}.get(result.finish_reason, "")
    return f"{result.n_tokens} tokens{ending}"


def answer_label(version: str | None, settings: dict, mode: str) -> str:
    """What an answer is revealed as after saving: its seed (two samples) or its model version."""
    return f"seed {settings.get('seed')}" if mode == "seeds" else (version or "unknown version")


class CompareFlow:
    """Compare mode's steps; the page owns the queue, the flow runner and the shared widgets."""

    def __init__(self, page: AnnotateHost) -> None:
        self.page = page
        self.ctx = page.ctx
        self.view = page.compare
        self.streaming_slot: int | None = None
        self.saved: list[int] = []  # this session's comparison ids, newest last; Ctrl+Z withdraws them
        self.aborted = False  # a newer flow has taken over: write no further answer

    @property
    def rng(self) -> random.Random:
        return self.page.rng

    @property
    def pair(self) -> ShownPair | None:
        """The two answers on screen, once stored (kept in the page's session)."""
        return self.page.session.pair

    @pair.setter
    def pair(self, pair: ShownPair | None) -> None:
        self.page.session.pair = pair

    # ------------------------------------------------------------------ where the answers come from
    async def refresh_versions(self) -> list[ModelVersion]:
        versions = await self.ctx.store.run(Store.list_model_versions)
        options = self.page.compare_options
        options.set_source(self.ctx.settings.compare_source)
        names = [v.name for v in versions if v.adapter_path]
        listed = [options.version_x.itemData(i) for i in range(1, options.version_x.count())]
        if names != listed or options.versions() != self.ctx.settings.compare_versions:
            options.set_versions(names, self.ctx.settings.compare_versions)
        return versions

    async def sources(self) -> tuple[AnswerSource, AnswerSource]:
        """The two sources in their fixed order; CompareSetupError when they cannot give two answers."""
        versions = {v.name: v for v in await self.refresh_versions()}
        settings = self.ctx.settings.sampling()
        seed = settings.seed if settings.seed is not None else self.rng.randrange(SEED_LIMIT)
        if self.ctx.settings.compare_source == "seeds":
            if settings.temperature == 0:
                raise CompareSetupError(GREEDY_PROBLEM)
            first, second = settings.with_changes(seed=seed), settings.with_changes(seed=seed + 1)
            return AnswerSource(first), AnswerSource(second)
        names = self.ctx.settings.compare_versions
        if names[0] == names[1]:
            raise CompareSetupError("Choose two different model versions to compare.")
        chosen: list[ModelVersion | None] = []
        for name in names:
            if name and (name not in versions or not versions[name].adapter_path):
                raise CompareSetupError(
                    f"The model version '{name}' has no adapter any more; choose another."
                )
            chosen.append(versions[name] if name else None)
        same = settings.with_changes(seed=seed)  # one seed for both: only the model differs
        return AnswerSource(same, True, chosen[0]), AnswerSource(same, True, chosen[1])

    # ------------------------------------------------------------------ generating
    async def generate(self, prompt: Prompt) -> None:
        """Draw the order, write both answers in the order shown, store them, wait for the choice."""
        page, view = self.page, self.view
        self.pair = None
        view.clear()
        try:
            first, second = await self.sources()
        except CompareSetupError as exc:
            view.clear(str(exc))
            page.set_phase(Phase.WAITING)
            return
        swapped = self.rng.random() < 0.5
        shown = (second, first) if swapped else (first, second)
        page.set_phase(Phase.STREAMING)
        results = await self._write_both(prompt.text, shown)
        if results is None:
            return  # skip, regenerate or another question took over
        page.set_phase(Phase.SAVING)
        # Stored in source order (first source, then second), whichever was shown first.
        first_result, second_result = (results[1], results[0]) if swapped else results
        first_id = await self._store(prompt.id, first, first_result)
        second_id = await self._store(prompt.id, second, second_result)
        mode = self.ctx.settings.compare_source
        labels = (self._label(results[0], shown[0], mode), self._label(results[1], shown[1], mode))
        ids = (second_id, first_id) if swapped else (first_id, second_id)
        self.pair = ShownPair(prompt.id, ids, labels, swapped, mode)
        page.set_phase(Phase.READY)
        page.answer_ready.emit()

    async def _write_both(
        self, question: str, shown: tuple[AnswerSource, AnswerSource]
    ) -> tuple[GenerationResult, GenerationResult] | None:
        """Answer 1, then Answer 2, streamed into their cards; None when a newer flow took over."""
        results = []
        try:
            for slot, source in enumerate(shown):
                if self.aborted:
                    return None
                self.streaming_slot = slot
                self.view.set_status(slot, "Writing...  Esc stops")
                result = await self._answer(question, source)
                self.view.set_text(slot, result.text)  # the authoritative text, whatever the pieces did
                self.view.show_start(slot)
                self.view.set_status(slot, blind_caption(result))
                results.append(result)
        finally:
            self.streaming_slot = None
        return None if self.aborted else (results[0], results[1])

    @staticmethod
    def _label(result: GenerationResult, source: AnswerSource, mode: str) -> str:
        return answer_label(result.adapter or result.model_label, source.settings.to_dict(), mode)

    async def _answer(self, question: str, source: AnswerSource) -> GenerationResult:
        engine = self.ctx.engine
        if not source.switch:
            return await engine.generate(question, source.settings)
        version = source.version
        adapter_dir = version.adapter_path if version else None
        return await engine.generate_with_adapter(
            question, source.settings, adapter_dir, version.name if version else None
        )

    async def _store(self, prompt_id: int, source: AnswerSource, result: GenerationResult) -> int:
        return await self.ctx.store.run(
            Store.add_generation, prompt_id, result.text, model_version=result.adapter or result.model_label,
            settings=source.settings.to_dict(), time_to_first_token_s=result.time_to_first_token_s,
            tokens_per_s=result.tokens_per_s, n_tokens=result.n_tokens, finish_reason=result.finish_reason,
        )  # fmt: skip

    def text_arrived(self, piece: str) -> None:
        if self.streaming_slot is not None:
            self.view.append(self.streaming_slot, piece)

    # ------------------------------------------------------------------ the choice
    def choose(self, choice: str) -> None:
        """1 / 2 / T / B: save the choice; after E, 1 / 2 open that answer for correcting instead."""
        page = self.page
        if page.phase is Phase.PICKING and choice in SLOT_CHOICES:
            slot = SLOT_CHOICES.index(choice)
            page.set_phase(Phase.EDITING)
            self.view.begin_edit(slot)
            self.view.show_hint(f"Correcting Answer {slot + 1}, the better one.")
        elif page.phase is Phase.READY and self.pair is not None:
            self._save(choice)

    def start_pick(self) -> None:
        if self.page.phase is Phase.READY and self.pair is not None:
            self.page.set_phase(Phase.PICKING)
            self.view.show_hint(PICK_HINT)

    def save_edit(self) -> None:
        if self.page.phase is not Phase.EDITING or self.view.editing_slot is None:
            return
        text = self.view.edited_text()
        if not text.strip():
            self.page.show_feedback(
                "The corrected answer is empty; type the correction or press Esc.", problem=True
            )
            return
        self._save(SLOT_CHOICES[self.view.editing_slot], edited_text=text)

    def escape(self) -> bool:
        """Esc while picking or correcting goes back to the choice; True when it did something."""
        page = self.page
        if page.phase is Phase.EDITING:
            self.view.end_edit(restore=True)
        elif page.phase is not Phase.PICKING:
            return False
        self.view.show_hint(COMPARE_HINT)
        page.set_phase(Phase.READY)
        page.setFocus()
        return True

    def _save(self, choice: str, edited_text: str | None = None) -> None:
        page = self.page
        if self.pair is None or not page.ensure_annotator():
            return
        # Capture everything now and block further keys at once: a quick second press must not land on
        # the next question's answers, which the clinician has not read yet.
        pair, back_to, flags = self.pair, page.phase, page.extras.flags()
        page.set_phase(Phase.SAVING)
        page.run_flow(
            lambda: self._save_flow(pair, choice, back_to, edited_text, flags), "Saving the comparison"
        )

    async def _save_flow(
        self, pair: ShownPair, choice: str, back_to: Phase, edited_text: str | None, flags: list[str]
    ) -> None:
        save = self.ctx.store.saving.save(
            Store.record_comparison, pair.generation_ids[0], pair.generation_ids[1], choice,
            annotator=self.ctx.annotator, swapped=pair.swapped, mode=pair.mode,
            edited_text=edited_text, safety_flags=tuple(flags), description="the comparison",
            on_saved=self._saved_later,
        )  # fmt: skip

        def stored(comparison_id: int) -> str:
            self.saved.append(comparison_id)
            corrected = ", corrected" if edited_text else ""
            return f"Saved: {CHOICE_LABELS[choice]}{corrected} (1: {pair.labels[0]}, 2: {pair.labels[1]})"

        await self.page.save_then_next(save, back_to, self.view, "comparison", stored)

    def _saved_later(self, comparison_id: int) -> None:
        self.saved.append(comparison_id)
        self.page.saved_later("comparison")

    # ------------------------------------------------------------------ undo
    async def undo_flow(self) -> None:
        """Withdraw this session's last comparison and show its two answers again, in the same order."""
        page = self.page
        if not self.saved:
            page.show_feedback("No comparison to undo")
            page.recover()
            return
        comparison_id = self.saved.pop()
        await self.ctx.store.run(Store.withdraw_comparison, comparison_id, annotator=self.ctx.annotator)
        comparison = await self.ctx.store.run(Store.get_comparison, comparison_id)
        ids = (comparison.first_generation_id, comparison.second_generation_id)
        generations = [await self.ctx.store.run(Store.get_generation, gid) for gid in ids]
        await page.refresh_counter()
        page.cursor.go_to(comparison.prompt_id)
        await page.show_current(generate=False)
        for slot, generation in enumerate(generations):
            self.view.set_text(slot, generation.text)
            self.view.set_status(slot, "Compared before")
        page.extras.show_values(comparison.safety_flags, None)
        labels = (
            answer_label(generations[0].model_version, generations[0].settings, comparison.mode),
            answer_label(generations[1].model_version, generations[1].settings, comparison.mode),
        )
        self.pair = ShownPair(comparison.prompt_id, ids, labels, comparison.swapped, comparison.mode)
        page.set_phase(Phase.READY)
        page.show_feedback(f"Undone: {CHOICE_LABELS[comparison.choice]} withdrawn")
