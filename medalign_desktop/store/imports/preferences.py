"""Import preference pairs (UltraMedical-Preferences format).

The format: one record per line / row, ``{"prompt": str, "chosen": [{"role", "content"}, ...],
"rejected": [...]}``; other keys (``id``, ``score`` ...) are ignored. The pair's texts are the last
assistant message of each list; the prompt is ``prompt``, or else the last user message of ``chosen``.
JSONL, a JSON array, Parquet and ``datasets`` folders are read (CSV cannot hold message lists).

Same guarantees as the question import (:mod:`questions`): the same staged write in short transactions
(:mod:`staging`: a verdict is never blocked for long, a cancel writes nothing),
every bad record reported with its line / row and field while the good ones go in, and a content hash
(prompt + both message lists) so importing a file twice adds nothing the second time. The original message
lists are kept as JSON so an export can reproduce them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medalign_desktop.store.errors import StoreImportError
from medalign_desktop.store.imports.base import Cancel, ImportReport, Progress, run_import
from medalign_desktop.store.imports.readers import open_reader
from medalign_desktop.store.imports.records import (
    ANSWER_ROLES,
    HUMAN_ROLES,
    RecordError,
    checked_text,
    json_type,
)

if TYPE_CHECKING:
    from medalign_desktop.store.store import Store

PAIR_COLUMNS = ("chosen", "rejected")


@dataclass(frozen=True)
class PreferenceRecord:
    prompt: str
    chosen: str
    rejected: str
    chosen_messages: list[dict[str, Any]]
    rejected_messages: list[dict[str, Any]]


def _pair_columns_problem(columns: list[str]) -> str | None:
    missing = [name for name in PAIR_COLUMNS if name not in columns]
    if not missing:
        return None
    found = ", ".join(columns[:12]) or "none"
    return f"no {' or '.join(repr(m) for m in missing)} column for preference pairs (found {found})"


def _text(field: str, value: Any) -> str:
    if value is None:
        name = field.rsplit(".", 1)[-1]
        raise RecordError(field, f"missing field '{name}'")
    if not isinstance(value, str):
        raise RecordError(field, f"expected a string, got {json_type(value)}")
    return checked_text(field, value)


def _messages(field: str, value: Any) -> list[dict[str, Any]]:
    """A list of {role, content} objects (other keys kept as they are)."""
    if value is None:
        raise RecordError(field, f"missing field '{field}'")
    if not isinstance(value, list):
        raise RecordError(field, f"expected a list of messages {{role, content}}, got {json_type(value)}")
    for index, message in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(message, dict):
            raise RecordError(
                where, f"expected an object with 'role' and 'content', got {json_type(message)}"
            )
        _text(f"{where}.role", message.get("role"))
        _text(f"{where}.content", message.get("content"))
    return value


def _last(messages: list[dict[str, Any]], roles: tuple[str, ...]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index]["role"] in roles:
            return index
    return None


def _answer(field: str, messages: list[dict[str, Any]]) -> str:
    index = _last(messages, ANSWER_ROLES)
    if index is None:
        raise RecordError(field, "no assistant message (the answer)")
    text = messages[index]["content"]
    if not text.strip():
        raise RecordError(f"{field}[{index}].content", "the answer is empty")
    return text


def parse_preference(record: Any) -> PreferenceRecord:
    """Validate one record; RecordError names the field at fault."""
    if not isinstance(record, dict):
        raise RecordError(None, f"expected a JSON object, got {json_type(record)}")
    chosen_messages = _messages("chosen", record.get("chosen"))
    rejected_messages = _messages("rejected", record.get("rejected"))
    if record.get("prompt") is not None:
        prompt = _text("prompt", record["prompt"])
    else:
        user = _last(chosen_messages, HUMAN_ROLES)
        if user is None:
            raise RecordError("prompt", "missing field 'prompt' (and no user message in 'chosen')")
        prompt = chosen_messages[user]["content"]
    if not prompt.strip():
        raise RecordError("prompt", "the prompt is empty")
    chosen, rejected = _answer("chosen", chosen_messages), _answer("rejected", rejected_messages)
    if chosen.strip() == rejected.strip():
        raise RecordError("rejected", "is the same answer as 'chosen'")
    return PreferenceRecord(prompt, chosen, rejected, chosen_messages, rejected_messages)


def pair_row(record: PreferenceRecord, created_at: str) -> dict[str, Any]:
    try:
        chosen_json = json.dumps(record.chosen_messages, ensure_ascii=False)
        rejected_json = json.dumps(record.rejected_messages, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise RecordError(None, f"the messages cannot be stored as JSON: {exc}") from None
    identity = json.dumps([record.prompt, chosen_json, rejected_json], ensure_ascii=False)
    return {
        "prompt": record.prompt,
        "chosen": record.chosen,
        "rejected": record.rejected,
        "chosen_messages_json": chosen_json,
        "rejected_messages_json": rejected_json,
        "dedup_hash": hashlib.sha256(identity.encode("utf-8")).hexdigest(),
        "created_at": created_at,
    }


def import_preferences(
    store: Store, path: str | Path, *, progress: Progress | None = None, cancel: Cancel | None = None
) -> ImportReport:
    """Import a preference file or folder; see the module docstring for the guarantees.

    ``progress(done, total)`` and ``cancel()`` behave as in :func:`questions.import_questions`.
    """
    path = Path(path).expanduser()
    reader = open_reader(path, _pair_columns_problem)
    if reader.format == "csv":
        raise StoreImportError(
            f"Cannot import {path} as preference pairs: CSV cannot hold the 'chosen' / 'rejected' message "
            "lists (use JSONL, a JSON array, Parquet or a datasets folder)"
        )
    report = ImportReport(path=path, format=reader.format, noun="preference pair")
    now = store.clock()
    return run_import(
        store, reader, report, progress, cancel,
        kind="pairs", parse=lambda item: pair_row(parse_preference(item.record), now),
    )  # fmt: skip
