"""What training jobs learn from, read from the store. The job runner snapshots these into a job folder.

Only questions on the ``train`` split are returned: held-out questions are for evaluation and never reach a
training snapshot. Withdrawn verdicts are excluded. An accepted answer teaches the generation's text; an
edited one teaches the clinician's edit (the original stays in ``generations``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from medalign_desktop.store.db import query_value

# The moment the last incremental retrain finished; feedback after it is "new". The auto-retrain counter
# (history.samples_since_last_retrain) counts the same set.
LAST_RETRAIN_SQL = (
    "SELECT coalesce(max(finished_at), '') FROM jobs WHERE kind = 'hitl' AND state = 'succeeded'"
)


@dataclass(frozen=True)
class TrainingExample:
    prompt_id: int
    question: str
    answer: str
    source: str  # "accept", "edit" or "reference"
    feedback_id: int | None
    split: str
    created_at: str


def last_retrain_cutoff(db: Database) -> str:
    return str(query_value(db, LAST_RETRAIN_SQL))


def feedback_examples(db: Database) -> list[TrainingExample]:
    """Every live accepted or edited answer on a train-split question, oldest first."""
    sql = """
        SELECT p.id, p.text, CASE f.verdict WHEN 'edit' THEN f.edited_text ELSE g.text END,
               f.verdict, f.id, p.split, f.created_at
        FROM feedback f
        JOIN generations g ON g.id = f.generation_id
        JOIN prompts p ON p.id = g.prompt_id
        WHERE f.withdrawn = 0 AND f.verdict IN ('accept', 'edit') AND p.split = 'train'
        ORDER BY f.created_at, f.id
    """
    return [TrainingExample(*row) for row in db.execute(sql).fetchall()]


def reference_examples(db: Database) -> list[TrainingExample]:
    """Imported questions with a reference answer on the train split (Model A's instruction set)."""
    sql = """
        SELECT id, text, reference_answer, 'reference', NULL, split, created_at FROM prompts
        WHERE split = 'train' AND reference_answer IS NOT NULL AND trim(reference_answer) != ''
        ORDER BY id
    """
    return [TrainingExample(*row) for row in db.execute(sql).fetchall()]


def prompt_splits(db: Database, prompt_ids: list[int]) -> dict[int, str]:
    """The current split of each prompt, for the snapshot's held-out guard."""
    if not prompt_ids:
        return {}
    marks = ",".join("?" * len(prompt_ids))
    return dict(db.execute(f"SELECT id, split FROM prompts WHERE id IN ({marks})", prompt_ids).fetchall())


def held_out_texts(db: Database) -> set[str]:
    """The (stripped) text of every held-out question, to keep imported pairs about them out of training."""
    rows = db.execute("SELECT text FROM prompts WHERE split = 'held_out'").fetchall()
    return {text.strip() for (text,) in rows}


def train_prompts(db: Database, *, unannotated_only: bool = False) -> list[tuple[int, str]]:
    """(id, text) of train-split questions, oldest first; optionally only those without a live verdict."""
    sql = "SELECT p.id, p.text FROM prompts p WHERE p.split = 'train'"
    if unannotated_only:
        sql += """ AND NOT EXISTS (
            SELECT 1 FROM generations g JOIN feedback f ON f.generation_id = g.id
            WHERE g.prompt_id = p.id AND f.withdrawn = 0)"""
    return [(pid, text) for pid, text in db.execute(sql + " ORDER BY p.id").fetchall()]
