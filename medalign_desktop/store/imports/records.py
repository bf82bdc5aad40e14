"""Turn one imported record (a dict from any format) into the fields of a prompt.

Two shapes are understood, whatever the file format:

- UltraMedical / ShareGPT: ``{"id", "type", "conversations": [{"from": "human", "value": question},
  {"from": "gpt", "value": reference}], "answer", "score"}``. For multiple choice, ``answer`` holds the
  key letter and the options are usually lines ``A. ...`` inside the question text.
- Flat columns: ``question`` / ``prompt``, ``reference_answer`` / ``reference`` / ``answer``,
  ``answer_key``, ``options`` (list, mapping, or their JSON text), ``id`` / ``question_id`` /
  ``external_id``, ``split``.

Texts are kept exactly (no stripping, no normalisation); blank questions are refused, and so is any text
longer than ``validation.MAX_TEXT_CHARS`` (named by field).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from medalign_desktop.store.errors import StoreValidationError
from medalign_desktop.store.validation import check_length, check_unicode

HUMAN_ROLES = ("human", "user")
ANSWER_ROLES = ("gpt", "assistant")
QUESTION_FIELDS = ("question", "prompt")
REFERENCE_FIELDS = ("reference_answer", "reference", "answer")
ID_FIELDS = ("id", "question_id", "external_id")
SPLIT_ALIASES = {
    "train": "train",
    "held_out": "held_out",
    "test": "held_out",
    "validation": "held_out",
    "valid": "held_out",
    "eval": "held_out",
    "dev": "held_out",
}
_KEY_RE = re.compile(r"^\(?([A-Za-z])\)?[.):]?$")
_MCQ_TYPE_RE = re.compile(r"mcq|choice|multiple|exam", re.IGNORECASE)
_OPTION_RE = re.compile(r"^\s*\(?([A-J])[.):]\s+(\S.*?)\s*$")


class RecordError(Exception):
    """One record is invalid; ``field`` names where (None: the record as a whole)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class QuestionRecord:
    text: str
    reference_answer: str | None
    answer_key: str | None
    options: dict[str, str] | list[str] | None
    external_id: str | None
    split: str | None


def json_type(value: Any) -> str:
    """JSON's name for a Python value's type, for messages about JSON input."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    if type(value) in names:
        return names[type(value)]
    return "number" if isinstance(value, int | float) else type(value).__name__


def _string(field: str, value: Any, *, allow_number: bool = False) -> str | None:
    if value is None:
        return None
    if allow_number and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise RecordError(field, f"expected a string, got {json_type(value)}")
    return checked_text(field, value)


def checked_text(field: str, value: str) -> str:
    """``value`` if its length and characters are allowed, else RecordError naming ``field``."""
    try:
        return check_length(field, check_unicode(field, value))
    except StoreValidationError as exc:
        raise RecordError(field, exc.message) from None


def _blank_to_none(value: str | None) -> str | None:
    return value if value is not None and value.strip() else None


def parse_options_from_text(text: str) -> dict[str, str] | None:
    """``A. ...`` / ``(B) ...`` lines of a question, if they run A, B, C ... (at least two)."""
    options: dict[str, str] = {}
    for line in text.splitlines():
        match = _OPTION_RE.match(line)
        if match and ord(match.group(1)) - ord("A") == len(options):
            options[match.group(1)] = match.group(2)
    return options if len(options) >= 2 else None


def _answer_key(answer: str | None, options: Any) -> str | None:
    if answer is None or not answer.strip():
        return None
    match = _KEY_RE.match(answer.strip())
    if match:
        return match.group(1).upper()
    if isinstance(options, dict):
        wanted = answer.strip().casefold()
        for letter, text in options.items():
            if isinstance(text, str) and text.strip().casefold() == wanted:
                return str(letter)
    return None


def _conversation(turns: Any) -> tuple[str, str | None]:
    """(question, reference) from ShareGPT turns: the first human turn and the first answer after it."""
    if not isinstance(turns, list):
        raise RecordError("conversations", f"expected a list of turns, got {json_type(turns)}")
    question: str | None = None
    for index, turn in enumerate(turns):
        where = f"conversations[{index}]"
        if not isinstance(turn, dict):
            raise RecordError(where, f"expected an object with 'from' and 'value', got {json_type(turn)}")
        role = turn.get("from", turn.get("role"))
        if role is None:
            raise RecordError(f"{where}.from", "missing field 'from'")
        value = _string(f"{where}.value", turn.get("value", turn.get("content")))
        if value is None:
            raise RecordError(f"{where}.value", "missing field 'value'")
        if question is None and role in HUMAN_ROLES:
            if not value.strip():
                raise RecordError(f"{where}.value", "the question is empty")
            question = value
        elif question is not None and role in ANSWER_ROLES:
            return question, value
    if question is None:
        raise RecordError("conversations", "no human turn (the question)")
    return question, None


def _options(value: Any) -> dict[str, str] | list[str] | None:
    if value is None or isinstance(value, dict | list):
        return value
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RecordError("options", f"not valid JSON: {exc.msg}") from None
        if isinstance(parsed, dict | list):
            return parsed
    raise RecordError("options", f"expected a list or an object of option texts, got {json_type(value)}")


def _split(value: Any) -> str | None:
    value = _blank_to_none(_string("split", value))
    if value is None:
        return None
    if value.lower() not in SPLIT_ALIASES:
        raise RecordError("split", f"{value!r} is not a known split (train, held_out, test, validation)")
    return SPLIT_ALIASES[value.lower()]


def _first(record: dict[str, Any], names: tuple[str, ...]) -> tuple[str | None, Any]:
    for name in names:
        if record.get(name) is not None:
            return name, record[name]
    return None, None


def parse_record(record: Any) -> QuestionRecord:
    """Validate and normalise one record; RecordError says which field is wrong."""
    if not isinstance(record, dict):
        raise RecordError(None, f"expected a JSON object, got {json_type(record)}")
    id_field, raw_id = _first(record, ID_FIELDS)
    external_id = _blank_to_none(_string(id_field or "id", raw_id, allow_number=True))
    kind = _string("type", record.get("type")) or ""
    if "conversations" in record:
        text, reference = _conversation(record["conversations"])
        answer = _blank_to_none(_string("answer", record.get("answer"), allow_number=True))
        options = _options(record.get("options")) or parse_options_from_text(text)
        key = _answer_key(answer, options)
        if key is None and answer is not None:
            # Not a letter: the official answer of an MCQ, or the only reference there is.
            if reference is None:
                reference = answer
            elif options or _MCQ_TYPE_RE.search(kind):
                key = answer.strip()
        return QuestionRecord(text, reference, key, options, external_id, _split(record.get("split")))
    field, text = _first(record, QUESTION_FIELDS)
    if field is None:
        raise RecordError("conversations", "missing field 'conversations' (or a flat 'question' field)")
    text = _string(field, text)
    if not text.strip():
        raise RecordError(field, "the question is empty")
    ref_field, reference = _first(record, REFERENCE_FIELDS)
    reference = _blank_to_none(_string(ref_field or "reference_answer", reference, allow_number=True))
    options = _options(record.get("options")) or parse_options_from_text(text)
    key = _blank_to_none(_string("answer_key", record.get("answer_key"), allow_number=True))
    if key is None and options and ref_field == "answer":
        key = _answer_key(reference, options)
        reference = None if key is not None else reference
    return QuestionRecord(text, reference, key, options, external_id, _split(record.get("split")))
