"""Import recorded verdicts (JSONL) onto imported questions: a study's feedback, or verdicts from another tool.

One record a line:

    {"question_id": "medalign-sample-001", "answer": "The answer is A.", "verdict": "edit",
     "edited_text": "The answer is D. ...", "annotator": "dr-a"}
    verdict: accept | edit (edited_text required) | reject (reject_reason optional)

``question_id`` is the question's own id from its import file (``id`` there). Each record becomes an answer
of the base model and the verdict on it, exactly as if given on the Annotate page. A record whose annotator
already has a live verdict on that question is skipped (importing twice adds nothing). Every bad line is
reported with its number and field; the good ones are imported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medalign_desktop.store.errors import StoreValidationError

if TYPE_CHECKING:
    from medalign_desktop.store.store import Store

VERDICTS = ("accept", "edit", "reject")


@dataclass
class FeedbackImportReport:
    source: Path
    imported: int = 0
    already_present: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"Imported {self.imported} verdicts from {self.source.name}; {self.already_present} already present"
        if self.errors:
            text += f"; {len(self.errors)} invalid:\n  " + "\n  ".join(self.errors[:20])
        return text + ("" if self.errors else ".")


def _record(line: str, number: int, source: Path) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise StoreValidationError("line", f"{source.name} line {number}: not JSON ({exc})") from None
    if not isinstance(record, dict):
        raise StoreValidationError("line", f"{source.name} line {number}: not a JSON object")
    for name in ("question_id", "answer", "annotator"):
        if not isinstance(record.get(name), str) or not record[name].strip():
            raise StoreValidationError(
                name, f"{source.name} line {number}: '{name}' must be a non-empty text"
            )
    if record.get("verdict") not in VERDICTS:
        raise StoreValidationError(
            "verdict", f"{source.name} line {number}: 'verdict' must be one of {VERDICTS}"
        )
    if record["verdict"] == "edit" and not str(record.get("edited_text") or "").strip():
        raise StoreValidationError("edited_text", f"{source.name} line {number}: an edit needs 'edited_text'")
    return record


def _known(store: Store) -> tuple[dict[str, int], set[tuple[int, str]]]:
    """External question id -> prompt id, and the (prompt, annotator) pairs with a live verdict."""
    with store.exclusive() as db:
        ids = {
            str(r[0]): int(r[1])
            for r in db.execute("SELECT external_id, id FROM prompts WHERE external_id IS NOT NULL")
        }
        judged = db.execute(
            "SELECT g.prompt_id, f.annotator FROM feedback f JOIN generations g ON g.id = f.generation_id "
            "WHERE f.withdrawn = 0"
        ).fetchall()
    return ids, {(int(p), str(a)) for p, a in judged}


def import_feedback(store: Store, path: str | Path) -> FeedbackImportReport:
    path = Path(path)
    report = FeedbackImportReport(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreValidationError("path", f"Cannot read {path}: {exc}") from None
    prompt_ids, judged = _known(store)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = _record(line, number, path)
            prompt_id = prompt_ids.get(record["question_id"])
            if prompt_id is None:
                raise StoreValidationError(
                    "question_id",
                    f"{path.name} line {number}: no imported question {record['question_id']!r}",
                )
        except StoreValidationError as exc:
            report.errors.append(exc.message)
            continue
        if (prompt_id, record["annotator"]) in judged:
            report.already_present += 1
            continue
        generation = store.add_generation(prompt_id, record["answer"], model_version="base", settings={})
        store.record_verdict(
            generation, record["verdict"], annotator=record["annotator"], edited_text=record.get("edited_text"),
            reject_reason=record.get("reject_reason"),
        )  # fmt: skip
        judged.add((prompt_id, record["annotator"]))
        report.imported += 1
    return report
