"""Input checks shared by the writers: each raises StoreValidationError naming the field.

Everything is checked before the first write so a refused input never leaves half a record behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from medalign_desktop.store.errors import StoreValidationError


def check_unicode(field: str, value: str) -> str:
    """SQLite stores UTF-8: a lone surrogate (possible from JSON ``\\ud800``) cannot be stored faithfully."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        raise StoreValidationError(
            field, f"text is not valid Unicode (lone surrogate U+{ord(bad):04X} at character {exc.start})"
        ) from None
    return value


MAX_TEXT_CHARS = 100_000  # one imported text (question, answer ...): ~25,000 tokens, beyond any context


def check_length(field: str, value: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Refuse a text longer than ``limit`` characters (a 50 MB "question" is a broken file, not a question)."""
    if len(value) > limit:
        raise StoreValidationError(
            field,
            f"is {len(value):,} characters long; the limit is {limit:,} (the rest of the file is imported)",
        )
    return value


def check_text(field: str, value: Any, *, required: bool = True) -> str | None:
    """A string kept exactly as given (no stripping); ``required`` means non-blank."""
    if value is None:
        if required:
            raise StoreValidationError(field, "is required")
        return None
    if not isinstance(value, str):
        raise StoreValidationError(field, f"must be text, got {type(value).__name__}")
    if required and not value.strip():
        raise StoreValidationError(field, "must not be empty")
    return check_unicode(field, value)


def check_choice(field: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise StoreValidationError(field, f"{value!r} is not one of {', '.join(choices)}")
    return value


def check_rating(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise StoreValidationError("rating", f"must be a whole number from 1 to 5, got {value!r}")
    return value


def check_flags(value: Any, allowed: Iterable[str]) -> tuple[str, ...]:
    """A collection of known flags, returned sorted and without repeats."""
    allowed = tuple(allowed)
    if value is None:
        return ()
    if isinstance(value, str | bytes):
        raise StoreValidationError("safety_flags", f"must be a list of flags, not a single string {value!r}")
    try:
        flags = list(value)
    except TypeError:
        raise StoreValidationError(
            "safety_flags", f"must be a list of flags, got {type(value).__name__}"
        ) from None
    for flag in flags:
        if not isinstance(flag, str) or flag not in allowed:
            raise StoreValidationError("safety_flags", f"{flag!r} is not one of {', '.join(allowed)}")
    return tuple(sorted(set(flags)))


def check_id(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StoreValidationError(field, f"must be a positive integer id, got {value!r}")
    return value


def check_optional_number(field: str, value: Any, *, integer: bool = False) -> float | int | None:
    if value is None:
        return None
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < 0:
        kind = "a whole number" if integer else "a number"
        raise StoreValidationError(field, f"must be {kind} >= 0, got {value!r}")
    return value
