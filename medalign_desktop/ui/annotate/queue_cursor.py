"""Where the clinician is in the annotation queue. Pure Python, so it is tested without Qt."""

from __future__ import annotations


class QueueCursor:
    """A snapshot of the queue's prompt ids and the position in it.

    The snapshot is kept while annotating (a verdict does not shrink the list under the clinician's
    feet, so "12 of 400" moves forward steadily); it is reloaded when the filter changes or after an import.
    """

    def __init__(self, prompt_ids: list[int] | None = None) -> None:
        self.ids: list[int] = list(prompt_ids or [])
        self.index = 0

    def reset(self, prompt_ids: list[int]) -> None:
        self.ids = list(prompt_ids)
        self.index = 0

    @property
    def current(self) -> int | None:
        return self.ids[self.index] if 0 <= self.index < len(self.ids) else None

    def advance(self) -> int | None:
        self.index = min(self.index + 1, len(self.ids))
        return self.current

    def go_to(self, prompt_id: int) -> None:
        """Make ``prompt_id`` current, inserting it here if the snapshot does not hold it (typed, undone)."""
        if prompt_id in self.ids:
            self.index = self.ids.index(prompt_id)
        else:
            self.index = min(self.index, len(self.ids))
            self.ids.insert(self.index, prompt_id)

    def position_text(self) -> str:
        total = len(self.ids)
        if total == 0:
            return "No questions in the queue"
        if self.current is None:
            return f"End of the queue ({total} question{'s' if total != 1 else ''})"
        return f"Question {self.index + 1:,} of {total:,}"
