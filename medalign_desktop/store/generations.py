"""Generations: one model answer to one prompt, with the settings and timings it was produced with.

The text is never changed afterwards: an edit verdict stores the corrected text in ``feedback`` so the
original stays available for preference pairs (edited > original).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlite_utils import Database

from medalign_desktop.store.db import insert, query_value, require_row
from medalign_desktop.store.errors import StoreValidationError
from medalign_desktop.store.rows import Generation
from medalign_desktop.store.validation import check_id, check_optional_number, check_text


def resolve_model_version(db: Database, model_version: Any) -> tuple[int | None, str | None]:
    """Accept a registered version's id, a name (registered or not, e.g. 'base'), or None."""
    if model_version is None:
        return None, None
    if isinstance(model_version, int) and not isinstance(model_version, bool):
        row = require_row(db, "model_versions", model_version, "model_version", "name")
        return model_version, row["name"]
    if isinstance(model_version, str) and model_version.strip():
        version_id = query_value(db, "SELECT id FROM model_versions WHERE name = ?", [model_version])
        return version_id, model_version
    raise StoreValidationError(
        "model_version", f"must be a version id, a name or None, got {model_version!r}"
    )


def check_settings(settings: Any) -> str:
    if not isinstance(settings, dict):
        raise StoreValidationError(
            "settings", f"must be a dict of sampling settings, got {type(settings).__name__}"
        )
    try:
        return json.dumps(settings, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise StoreValidationError("settings", f"must be JSON-serialisable: {exc}") from None


def add_generation(
    db: Database,
    clock: Callable[[], str],
    prompt_id: Any,
    text: Any,
    *,
    settings: Any,
    model_version: Any = None,
    time_to_first_token_s: Any = None,
    tokens_per_s: Any = None,
    n_tokens: Any = None,
    finish_reason: Any = None,
) -> int:
    check_id("prompt_id", prompt_id)
    # An empty answer is a real (bad) model output the clinician may want to reject, so only type is checked.
    check_text("text", text, required=False)
    if text is None:
        raise StoreValidationError("text", "is required")
    row = {
        "prompt_id": prompt_id,
        "settings_json": check_settings(settings),
        "text": text,
        "time_to_first_token_s": check_optional_number("time_to_first_token_s", time_to_first_token_s),
        "tokens_per_s": check_optional_number("tokens_per_s", tokens_per_s),
        "n_tokens": check_optional_number("n_tokens", n_tokens, integer=True),
        "finish_reason": check_text("finish_reason", finish_reason, required=False),
        "created_at": clock(),
    }
    require_row(db, "prompts", prompt_id, "prompt_id", "id")
    row["model_version_id"], row["model_version_name"] = resolve_model_version(db, model_version)
    return insert(db, "generations", row)


def get_generation(db: Database, generation_id: Any) -> Generation:
    check_id("generation_id", generation_id)
    return Generation.from_row(require_row(db, "generations", generation_id, "generation_id"))
