"""What the preference jobs learn from: pairs for ``dpo`` and ``reward``, prompts for ``ppo``.

    dpo / reward -> data/train.jsonl   {"id", "prompt": [system?, user], "chosen": [assistant], "rejected": [...]}
    ppo          -> data/prompts.jsonl {"id", "prompt": [system?, user]}

Pairs are derived from the clinicians' feedback each time (edits, comparisons, reject + better answer; see
``store/pairs.py``) plus the imported pair batches the user selected. Held-out questions never go in: the
store query leaves them out, and the guard here re-reads every question's split before anything is written.
An imported pair whose question text is a held-out question is dropped too (and counted), since it would
teach the model the evaluation answer by another route.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from medalign_desktop.store import Store
from medalign_desktop.store.pairs import iter_pairs
from medalign_desktop.store.rows import PAIR_SOURCES, PairFilter, PreferencePair
from medalign_desktop.store.training_data import held_out_texts, prompt_splits, train_prompts

FEEDBACK_SOURCES = tuple(s for s in PAIR_SOURCES if s != "imported")
PROMPT_SCOPES = ("all", "unannotated")


class PreferenceSnapshotError(Exception):
    """Nothing to learn from, or the data breaks a rule; the message says which."""


@dataclass(frozen=True)
class PairSelection:
    pairs: list[PreferencePair]
    n_feedback: int
    n_imported: int
    n_dropped_held_out: int  # imported pairs whose question is a held-out question


def select_pairs(store: Store, import_batch_ids: tuple[int, ...] = ()) -> PairSelection:
    """Live feedback pairs on train-split questions, plus the pairs of the chosen imported batches."""
    sources = FEEDBACK_SOURCES + (("imported",) if import_batch_ids else ())
    filters = PairFilter(sources=sources, import_batch_ids=tuple(import_batch_ids), include_held_out=False)
    with store.exclusive() as db:
        pairs = list(iter_pairs(db, filters))
        held_out = held_out_texts(db)
    kept = [p for p in pairs if not (p.source == "imported" and p.prompt.strip() in held_out)]
    if not kept:
        raise PreferenceSnapshotError(
            "No preference pairs to learn from: edit an answer, compare two answers, or reject an answer "
            "and accept another to the same question"
            + (", or choose an imported batch of pairs." if not import_batch_ids else ".")
        )
    n_imported = sum(1 for p in kept if p.source == "imported")
    return PairSelection(kept, len(kept) - n_imported, n_imported, len(pairs) - len(kept))


def assert_pairs_not_held_out(store: Store, pairs: list[PreferencePair]) -> None:
    """The held-out guard for pairs: re-read the split of every question a pair comes from."""
    ids = sorted({p.prompt_id for p in pairs if p.prompt_id is not None})
    with store.exclusive() as db:
        splits = prompt_splits(db, ids)
    leaked = sorted(pid for pid, split in splits.items() if split != "train")
    if leaked:
        raise PreferenceSnapshotError(
            f"Held-out questions would be trained on (ids {leaked[:10]}); the job was not started."
        )


def pair_record(pair: PreferencePair, system_prompt: str) -> dict:
    """One line of data/train.jsonl: TRL's explicit-prompt conversational preference format."""
    return {
        "id": pair.key,
        "prompt": conversation_prompt(pair.prompt, system_prompt),
        "chosen": [{"role": "assistant", "content": pair.chosen}],
        "rejected": [{"role": "assistant", "content": pair.rejected}],
    }


def conversation_prompt(question: str, system_prompt: str) -> list[dict]:
    prompt = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    prompt.append({"role": "user", "content": question})
    return prompt


def select_prompts(
    store: Store, *, scope: str = "all", max_prompts: int | None = None, seed: int = 0
) -> list[tuple[int, str]]:
    """Train-split questions for PPO rollouts: all of them, or those without a live verdict yet.

    ``max_prompts`` keeps a seeded random sample (PPO cost grows with every prompt it answers).
    """
    if scope not in PROMPT_SCOPES:
        raise PreferenceSnapshotError(
            f"Prompt scope must be one of {', '.join(PROMPT_SCOPES)}, not {scope!r}."
        )
    with store.exclusive() as db:
        prompts = train_prompts(db, unannotated_only=scope == "unannotated")
    if not prompts:
        raise PreferenceSnapshotError(
            "No questions on the train split to generate answers for: import questions first."
            if scope == "all"
            else "Every train-split question already has a verdict: choose all questions instead."
        )
    if max_prompts is not None and 0 < max_prompts < len(prompts):
        prompts = sorted(random.Random(seed).sample(prompts, max_prompts))
    return prompts
