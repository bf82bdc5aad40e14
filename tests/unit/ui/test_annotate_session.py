"""The Annotate page's session object, without Qt: the queue cursor, the phase, the answers shown."""

from __future__ import annotations

import sys

from medalign_desktop.store import Prompt
from medalign_desktop.ui.annotate.session import AnnotateSession, Phase, QueueCursor, ShownPair


def test_the_session_module_needs_no_qt():
    source = open(sys.modules[AnnotateSession.__module__].__file__, encoding="utf-8").read()
    assert "PySide6" not in source and "QtCore" not in source


def test_new_questions_join_the_end_of_the_queue_in_their_order():
    cursor = QueueCursor([10, 11, 12])
    cursor.advance()
    assert cursor.extend([11, 13, 12, 14]) == 2
    assert cursor.ids == [10, 11, 12, 13, 14] and cursor.current == 11  # the clinician stays where they are
    assert cursor.position_text() == "Question 2 of 5"
    assert cursor.extend([10, 13]) == 0


def test_questions_from_elsewhere_are_shown_at_once_only_when_the_queue_had_run_out():
    session = AnnotateSession(QueueCursor([1]))
    session.phase = Phase.READY
    assert session.queue_grew([1, 2]) is False  # mid-question: only the count grows
    assert session.cursor.ids == [1, 2]
    session.cursor.advance()
    session.cursor.advance()
    session.phase = Phase.EMPTY  # at the end of the queue
    assert session.cursor.current is None
    assert session.queue_grew([2, 3]) is True and session.cursor.current == 3
    assert session.queue_grew([3]) is False  # nothing new


def test_an_empty_queue_takes_the_first_imported_question():
    session = AnnotateSession()
    assert session.phase is Phase.EMPTY and session.queue_grew([]) is False
    assert session.queue_grew([7, 8]) is True and session.cursor.current == 7


def test_a_new_question_clears_the_answers_shown():
    session = AnnotateSession(generation_id=5, pair=ShownPair(1, (5, 6), ("seed 1", "seed 2"), False, "seeds"))
    session.clear_answers()
    assert session.generation_id is None and session.pair is None


def test_the_question_meta_line_says_where_it_came_from():
    def prompt(**fields) -> Prompt:
        base = dict(id=1, text="q", reference_answer=None, answer_key=None, options=None, source="import",
                    external_id="UM-1", split="train", import_batch_id=None, created_at="")  # fmt: skip
        return Prompt(**{**base, **fields})

    session = AnnotateSession()
    assert session.question_meta() == ""
    session.prompt = prompt()
    assert session.question_meta() == "UM-1"
    session.prompt = prompt(source="typed", split="held_out")
    assert session.question_meta() == "Typed question · held out"
    session.prompt = prompt(external_id=None, split="held_out")
    assert session.question_meta() == "held out"
