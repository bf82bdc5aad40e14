"""Prompts (questions): adding, reading, the annotation queue, train / held-out splits.

A prompt's identity is its content: ``dedup_hash`` is the SHA-256 of (text, reference answer, answer key,
options), unique in the table, so importing a file twice or typing the same question twice never stores it
twice; :func:`add_prompt` then returns the existing id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from sqlite_utils import Database

from medalign_desktop.store.db import insert, query_value, require_row, transaction
from medalign_desktop.store.errors import StoreValidationError
from medalign_desktop.store.rows import Prompt
from medalign_desktop.store.validation import check_choice, check_id, check_text, check_unicode
from medalign_desktop.store.vocab import QUEUE_MODES, SPLITS

Options = dict[str, str] | list[str] | None


def prompt_hash(text: str, reference_answer: str | None, answer_key: str | None, options: Options) -> str:
    payload = json.dumps([text, reference_answer, answer_key, options], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def check_options(value: Any) -> Options:
    """MCQ options: a list of texts or a mapping letter -> text; kept as given otherwise."""
    if value is None:
        return None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
        value = list(value)
    else:
        raise StoreValidationError(
            "options", f"must be a list or a mapping of texts, got {type(value).__name__}"
        )
    for key, text in items:
        if not isinstance(text, str) or not isinstance(key, str | int):
            raise StoreValidationError("options", f"option {key!r} must be text, got {type(text).__name__}")
        check_unicode(f"options[{key!r}]", text)
    return value


def prompt_row(
    text: Any,
    *,
    created_at: str,
    reference_answer: Any = None,
    answer_key: Any = None,
    options: Any = None,
    source: str = "typed",
    external_id: Any = None,
    split: str = "train",
    import_batch_id: int | None = None,
) -> dict[str, Any]:
    """Validate one prompt and return the row to insert (shared by add_prompt and the importers)."""
    text = check_text("text", text)
    reference_answer = check_text("reference_answer", reference_answer, required=False)
    answer_key = check_text("answer_key", answer_key, required=False)
    options = check_options(options)
    check_text("source", source)
    if external_id is not None:
        external_id = check_text("external_id", str(external_id), required=False)
    check_choice("split", split, SPLITS)
    return {
        "text": text,
        "reference_answer": reference_answer,
        "answer_key": answer_key,
        "options_json": json.dumps(options, ensure_ascii=False) if options is not None else None,
        "source": source,
        "external_id": external_id,
        "split": split,
        "import_batch_id": import_batch_id,
        "dedup_hash": prompt_hash(text, reference_answer, answer_key, options),
        "created_at": created_at,
    }


def add_prompt(db: Database, clock: Callable[[], str], text: Any, **fields: Any) -> int:
    row = prompt_row(text, created_at=clock(), **fields)
    with transaction(db):
        existing = query_value(db, "SELECT id FROM prompts WHERE dedup_hash = ?", [row["dedup_hash"]])
        if existing is not None:
            return int(existing)
        return insert(db, "prompts", row)


def get_prompt(db: Database, prompt_id: Any) -> Prompt:
    check_id("prompt_id", prompt_id)
    return Prompt.from_row(require_row(db, "prompts", prompt_id, "prompt_id"))


_QUEUE_SQL = {
    "all": "SELECT id FROM prompts WHERE (:held OR split = 'train') ORDER BY id",
    "unannotated": """
        SELECT p.id FROM prompts p
        WHERE (:held OR p.split = 'train')
          AND NOT EXISTS (
              SELECT 1 FROM generations g JOIN feedback f ON f.generation_id = g.id
              WHERE g.prompt_id = p.id AND f.withdrawn = 0)
        ORDER BY p.id
    """,
}


def queue(db: Database, *, mode: str = "unannotated", include_held_out: bool = False) -> list[int]:
    """Prompt ids in import order; 'unannotated' leaves out prompts with a live verdict."""
    check_choice("mode", mode, QUEUE_MODES)
    cursor = db.execute(_QUEUE_SQL[mode], {"held": 1 if include_held_out else 0})
    return [row[0] for row in cursor]


def set_split(db: Database, prompt_ids: Iterable[int], split: str) -> None:
    check_choice("split", split, SPLITS)
    ids = [check_id("prompt_ids", pid) for pid in prompt_ids]
    with transaction(db):
        for pid in ids:
            if db.execute("UPDATE prompts SET split = ? WHERE id = ?", [split, pid]).rowcount != 1:
                raise StoreValidationError("prompt_ids", f"no prompt with id {pid}")
