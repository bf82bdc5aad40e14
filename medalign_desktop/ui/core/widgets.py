"""The pieces of the Annotate page: question, streamed answer, reject panel, flags and rating, actions.

Layout and small behaviours only; the page (annotate_page.py) decides what happens and when.
"""

from __future__ import annotations

import functools

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QTextCursor
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QBoxLayout,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from medalign_desktop.ui.core import labels
from medalign_desktop.ui.core.page_parts import box_layout
from medalign_desktop.ui.core.plain import plain


def typing_in_text_field() -> bool:
    """True when the keyboard focus is in an editable text field (single-letter shortcuts stand back)."""
    widget = QApplication.focusWidget()
    if isinstance(widget, QLineEdit | QAbstractSpinBox):
        return True
    return isinstance(widget, QPlainTextEdit | QTextEdit) and not widget.isReadOnly()


def card(title: str, object_name: str = "card") -> tuple[QFrame, QVBoxLayout, QHBoxLayout]:
    """A white rounded panel with a small caption row; returns (frame, body layout, caption row)."""
    frame = QFrame()
    frame.setObjectName(object_name)
    body = box_layout(frame, margins=(18, 14, 18, 16), spacing=10)
    caption = QHBoxLayout()
    title_label = plain(QLabel(title.upper()))  # may hold a version name
    title_label.setObjectName("cardTitle")
    caption.addWidget(title_label)
    caption.addStretch(1)
    body.addLayout(caption)
    return frame, body, caption


def reading_view(object_name: str) -> QPlainTextEdit:
    """A read-only, word-wrapped text view that never steals the page's single-letter shortcuts."""
    view = QPlainTextEdit()
    view.setObjectName(object_name)
    view.setReadOnly(True)
    view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
    view.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
    view.setFrameShape(QFrame.Shape.NoFrame)
    return view


class FittedTextView(QTextEdit):
    """Read-only text as tall as its content (a short question takes little room), up to a cap."""

    def __init__(self, object_name: str, max_height: int = 300) -> None:
        super().__init__()
        self.setObjectName(object_name)
        self.setReadOnly(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.max_height = max_height
        self.document().documentLayout().documentSizeChanged.connect(self._fit)

    def _fit(self, *_args) -> None:
        margins = self.contentsMargins()
        wanted = int(self.document().size().height()) + margins.top() + margins.bottom() + 2
        self.setFixedHeight(max(40, min(wanted, self.max_height)))


class QuestionPanel(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        frame, body, caption = card("Question")
        layout = box_layout(self)
        layout.addWidget(frame)
        self.meta = plain(QLabel())  # the external id: imported content
        self.meta.setObjectName("metaLabel")
        caption.addWidget(self.meta)
        self.text = FittedTextView("questionText")
        body.addWidget(self.text)
        self.reference_toggle = QToolButton()
        self.reference_toggle.setObjectName("linkToggle")
        self.reference_toggle.setCheckable(True)
        self.reference_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.reference_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.reference_toggle.setText("Reference answer")
        self.reference_toggle.toggled.connect(self._show_reference)
        body.addWidget(self.reference_toggle)
        self.reference = plain(QLabel())  # imported content
        self.reference.setObjectName("referenceText")
        self.reference.setWordWrap(True)
        self.reference.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reference.hide()
        body.addWidget(self.reference)

    def show_prompt(self, text: str, reference: str | None, answer_key: str | None, meta: str) -> None:
        self.text.setPlainText(text)
        self.meta.setText(meta)
        parts = [f"Answer key: {answer_key}"] if answer_key else []
        if reference:
            parts.append(reference)
        self.reference.setText("\n\n".join(parts))
        self.reference_toggle.setVisible(bool(parts))
        self.reference_toggle.setChecked(False)

    def show_message(self, text: str) -> None:
        self.show_prompt(text, None, None, "")

    def _show_reference(self, shown: bool) -> None:
        self.reference.setVisible(shown)
        arrow = Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        self.reference_toggle.setArrowType(arrow)


class AnswerPanel(QFrame):
    """The streamed answer; becomes an inline editor for an edit verdict."""

    save_edit = Signal()
    cancel_edit = Signal()

    def __init__(self, title: str = "Model answer", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        frame, body, caption = card(title)
        self.frame = frame
        layout = box_layout(self)
        layout.addWidget(frame)
        self.status = plain(QLabel())
        self.status.setObjectName("metaLabel")
        caption.addWidget(self.status)
        self.text = reading_view("answerText")
        body.addWidget(self.text, 1)
        self.edit_bar = QWidget()
        bar = box_layout(self.edit_bar, QHBoxLayout)
        hint = QLabel("Editing: your text is saved as a correction; the model's original is kept.")
        hint.setObjectName("hintLabel")
        bar.addWidget(hint, 1)
        self.save_button = QPushButton("Save edit  [Ctrl+Enter]")
        self.save_button.setObjectName("editButton")
        self.save_button.clicked.connect(self.save_edit)
        self.cancel_button = QPushButton("Cancel  [Esc]")
        self.cancel_button.clicked.connect(self.cancel_edit)
        bar.addWidget(self.cancel_button)
        bar.addWidget(self.save_button)
        self.edit_bar.hide()
        body.addWidget(self.edit_bar)
        self._original = ""

    def clear(self, placeholder: str = "") -> None:
        self.text.clear()
        self.text.setPlaceholderText(placeholder)

    def append(self, piece: str) -> None:
        bar = self.text.verticalScrollBar()
        following = bar.value() >= bar.maximum() - 4  # keep following the end unless the reader scrolled up
        cursor = self.text.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(piece)
        if following:
            bar.setValue(bar.maximum())

    def set_text(self, text: str) -> None:
        if self.text.toPlainText() != text:
            self.text.setPlainText(text)

    def begin_edit(self) -> None:
        self._original = self.text.toPlainText()
        self.text.setReadOnly(False)
        self.text.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.text.setProperty("editing", True)
        self._repolish()
        self.edit_bar.show()
        self.text.setFocus()
        self.text.moveCursor(QTextCursor.MoveOperation.End)

    def end_edit(self, *, restore: bool) -> None:
        if restore:
            self.text.setPlainText(self._original)
        self.text.setReadOnly(True)
        self.text.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.text.setProperty("editing", False)
        self._repolish()
        self.edit_bar.hide()

    def edited_text(self) -> str:
        return self.text.toPlainText()

    @property
    def editing(self) -> bool:
        return not self.text.isReadOnly()

    def set_marked(self, marked: bool) -> None:
        """Outline the card (the answer the clinician picked as better)."""
        self.frame.setStyleSheet("#card { border: 2px solid #1565c0; }" if marked else "")

    def _repolish(self) -> None:
        self.text.style().unpolish(self.text)
        self.text.style().polish(self.text)


class RejectPanel(QFrame):
    """Reason (keys 1-6 pick one) and an optional note; Enter confirms, Esc cancels (via the page)."""

    confirmed = Signal(str, str)  # reason code, note ("" for none)
    cancelled = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("rejectPanel")
        layout = box_layout(self, QHBoxLayout, margins=(16, 10, 16, 10), spacing=10)
        layout.addWidget(QLabel("Why reject?"))
        self.reason = QComboBox()
        self.reason.setObjectName("rejectReason")
        for number, (code, text) in enumerate(labels.reject_reasons(), start=1):
            self.reason.addItem(f"{number}  {text}", code)
        layout.addWidget(self.reason)
        self.note = QLineEdit()
        self.note.setObjectName("rejectNote")
        self.note.setPlaceholderText("Note (optional): what is wrong or missing")
        layout.addWidget(self.note, 1)
        cancel = QPushButton("Cancel  [Esc]")
        cancel.clicked.connect(self.cancelled)
        self.confirm_button = QPushButton("Reject answer  [Enter]")
        self.confirm_button.setObjectName("rejectButton")
        self.confirm_button.clicked.connect(self.confirm)
        layout.addWidget(cancel)
        layout.addWidget(self.confirm_button)
        self.hide()

    def open_panel(self) -> None:
        self.reason.setCurrentIndex(0)
        self.note.clear()
        self.show()
        self.reason.setFocus()

    def confirm(self) -> None:
        self.confirmed.emit(self.reason.currentData(), self.note.text().strip())

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.confirm()
        elif Qt.Key.Key_1 <= key < Qt.Key.Key_1 + self.reason.count():
            self.reason.setCurrentIndex(key - Qt.Key.Key_1)
        else:
            super().keyPressEvent(event)


class RatingSelector(QWidget):
    """Five toggle buttons; clicking the chosen one again clears the rating."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = box_layout(self, QHBoxLayout, spacing=4)
        self.group = QButtonGroup(self)
        self.group.setExclusive(False)
        for value in range(1, 6):
            button = QToolButton()
            button.setObjectName("ratingButton")
            button.setText(str(value))
            button.setCheckable(True)
            button.setToolTip(f"Rate this answer {value} of 5")
            self.group.addButton(button, value)
            layout.addWidget(button)
        self.group.idClicked.connect(self._clicked)

    def _clicked(self, value: int) -> None:
        for button in self.group.buttons():
            if self.group.id(button) != value:
                button.setChecked(False)

    def value(self) -> int | None:
        checked = self.group.checkedId()
        return checked if checked > 0 else None

    def set_value(self, value: int | None) -> None:
        for button in self.group.buttons():
            button.setChecked(self.group.id(button) == value)


def key_button(layout: QBoxLayout, text: str, name: str, tip: str) -> QPushButton:
    """A button whose key is written on it ("Accept  [A]"); it takes no focus by click, so the keys stay
    with the page, and is added to ``layout``."""
    made = QPushButton(text)
    made.setObjectName(name)
    made.setToolTip(tip)
    made.setFocusPolicy(Qt.FocusPolicy.TabFocus)
    layout.addWidget(made)
    return made


def flag_boxes(layout: QBoxLayout, title: str) -> dict[str, QCheckBox]:
    """A caption and one tick box per safety flag, added to ``layout``; the boxes by flag code. Tab reaches
    them; a click does not take the focus from the page's keys."""
    caption = QLabel(title)
    caption.setObjectName("fieldLabel")
    layout.addWidget(caption)
    boxes: dict[str, QCheckBox] = {}
    for code, text in labels.safety_flags():
        box = boxes[code] = QCheckBox(text)
        box.setObjectName(f"flag_{code}")
        box.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        layout.addWidget(box)
    return boxes


class ReviewExtras(QWidget):
    """Safety flags and a 1-5 rating that go with the next verdict."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = box_layout(self, QHBoxLayout, margins=(4, 0, 4, 0), spacing=14)
        self.flag_boxes = flag_boxes(layout, "Safety flags")
        layout.addStretch(1)
        self.rating_caption = QLabel("Rating")
        self.rating_caption.setObjectName("fieldLabel")
        layout.addWidget(self.rating_caption)
        self.rating = RatingSelector()
        layout.addWidget(self.rating)

    def flags(self) -> list[str]:
        return [code for code, box in self.flag_boxes.items() if box.isChecked()]

    def show_values(self, flags: tuple[str, ...] | list[str], rating: int | None) -> None:
        for code, box in self.flag_boxes.items():
            box.setChecked(code in flags)
        self.rating.set_value(rating)

    def reset(self) -> None:
        self.show_values((), None)

    def show_rating(self, shown: bool) -> None:
        """A comparison has no 1-5 rating of its own: compare mode hides it."""
        self.rating_caption.setVisible(shown)
        self.rating.setVisible(shown)


class ActionBar(QWidget):
    """The verdict buttons, with their keyboard shortcut written on them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = box_layout(self, QHBoxLayout, spacing=8)
        button = functools.partial(key_button, layout)

        self.accept = button("Accept  [A]", "acceptButton", "The answer is right as it is")
        self.edit = button("Edit  [E]", "editButton", "Correct the answer; the original is kept")
        self.reject = button("Reject  [R]", "rejectButton", "The answer is wrong or unsafe")
        self.verdict_buttons = (self.accept, self.edit, self.reject)
        self._gap = QWidget()  # between the verdicts and the rest; hidden with the verdicts
        self._gap.setFixedWidth(16)
        layout.addWidget(self._gap)
        self.skip = button("Skip  [S]", "secondaryButton", "Next question without a verdict")
        self.regenerate = button("Regenerate  [G]", "secondaryButton", "Ask the model again")
        self.stop = button("Stop  [Esc]", "secondaryButton", "Stop the answer being written")
        layout.addStretch(1)
        self.feedback = plain(QLabel())  # may quote a refused field
        self.feedback.setObjectName("feedbackLabel")
        layout.addWidget(self.feedback)

    def show_verdicts(self, shown: bool) -> None:
        for widget in (*self.verdict_buttons, self._gap):
            widget.setVisible(shown)
