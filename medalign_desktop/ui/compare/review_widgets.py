"""The blind review's layout: the question, two unlabelled answers, safety flags per answer, the choice keys.

Widgets only; :mod:`medalign_desktop.ui.compare.review_flow` decides which question comes next and what is saved. Like compare mode,
nothing here shows a version name: the two answers are "Answer 1" and "Answer 2" until the vote is saved.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from medalign_desktop.ui.core.page_parts import box_layout
from medalign_desktop.ui.core.plain import plain
from medalign_desktop.ui.core.two_answers import TwoAnswerView
from medalign_desktop.ui.core.widgets import QuestionPanel, flag_boxes

REVIEW_HINT = "Shown in random order, unlabelled. 1 / 2: that answer is better · T tie · B both bad · S skip"


class AnswerFlags(QWidget):
    """The safety flags of one answer ("Answer 1 flags: unsafe advice, hallucinated fact, ...")."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = box_layout(self, QHBoxLayout, margins=(4, 0, 4, 0), spacing=12)
        self.boxes = flag_boxes(layout, title)  # tab-focus only: the choice keys stay with the review
        layout.addStretch(1)

    def flags(self) -> list[str]:
        return [code for code, box in self.boxes.items() if box.isChecked()]

    def reset(self) -> None:
        for box in self.boxes.values():
            box.setChecked(False)


class BlindReviewView(QWidget):
    """One held-out question and two versions' answers to it; keys are installed by the flow."""

    end_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        layout = box_layout(self, spacing=10)
        top = QHBoxLayout()
        self.position = plain(QLabel("Blind review"))
        self.position.setObjectName("positionLabel")
        self.end_button = QPushButton("End review  [Esc]")
        self.end_button.setObjectName("secondaryButton")
        self.end_button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.end_button.clicked.connect(self.end_requested)
        top.addWidget(self.position)
        top.addStretch(1)
        top.addWidget(self.end_button)
        layout.addLayout(top)
        self.question = QuestionPanel()
        self.answers = TwoAnswerView()
        self.choices = self.answers.choices
        self.choices.edit.hide()  # a blind review only votes; corrections belong to the Annotate page
        self.flags = (AnswerFlags("Answer 1 flags"), AnswerFlags("Answer 2 flags"))
        layout.addWidget(self.question)
        layout.addWidget(self.answers, 1)
        for row in self.flags:
            layout.addWidget(row)
        self.feedback = plain(QLabel())
        self.feedback.setObjectName("feedbackLabel")
        self.feedback.setWordWrap(True)
        layout.addWidget(self.feedback)
        self.show_message("")

    def show_pair(self, question: str, reference: str | None, answer_key: str | None,
                  texts: tuple[str, str], captions: tuple[str, str]) -> None:  # fmt: skip
        """A new question: its two answers in the order drawn, flags cleared, the keys live."""
        self.question.show_prompt(question, reference, answer_key, "held out")
        self.answers.clear()
        for slot, (text, caption) in enumerate(zip(texts, captions, strict=True)):
            self.answers.set_text(slot, text)
            self.answers.show_start(slot)
            self.answers.set_status(slot, caption)
        for row in self.flags:
            row.reset()
            row.setEnabled(True)
        self.answers.show_hint(REVIEW_HINT)
        self.set_live(True)

    def show_message(self, text: str) -> None:
        """No question on screen (all reviewed, nothing to review): say so in place of the answers."""
        self.question.show_message(text)
        self.answers.clear()
        self.answers.show_hint(REVIEW_HINT)
        for row in self.flags:
            row.reset()
            row.setEnabled(False)
        self.set_live(False)

    def set_live(self, live: bool) -> None:
        self.choices.set_live(ready=live, picking=False)

    def answer_flags(self) -> tuple[list[str], list[str]]:
        return self.flags[0].flags(), self.flags[1].flags()

    def set_feedback(self, text: str, *, problem: bool = False) -> None:
        self.feedback.setProperty("problem", problem)
        self.feedback.style().unpolish(self.feedback)
        self.feedback.style().polish(self.feedback)
        self.feedback.setText(text)
