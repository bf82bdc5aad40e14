"""The Annotate page's layout: top bar, question, answer (or two answers to compare), reject panel, flags
and rating, actions, ask box.

Widgets only; :mod:`medalign_desktop.ui.annotate.page` adds the behaviour (the queue, generating, verdicts, shortcuts) and
:mod:`medalign_desktop.ui.annotate.compare_mode` the behaviour of compare mode.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from medalign_desktop.engine import GenerationResult
from medalign_desktop.ui.core import dialogs
from medalign_desktop.ui.core.page_parts import page_layout
from medalign_desktop.ui.core.plain import plain
from medalign_desktop.ui.core.settings import AppSettings
from medalign_desktop.ui.core.two_answers import CompareOptions, TwoAnswerView
from medalign_desktop.ui.core.widgets import (
    ActionBar,
    AnswerPanel,
    QuestionPanel,
    RejectPanel,
    ReviewExtras,
)


def describe_result(result: GenerationResult) -> str:
    """The answer card's caption once an answer is complete, e.g. '48 tokens · 11.3 tokens/s · ...'."""
    ending = {"length": " · hit the token limit", "cancelled": " · stopped"}.get(result.finish_reason, "")
    first = (
        f" · first word after {result.time_to_first_token_s:.1f} s" if result.time_to_first_token_s else ""
    )
    return f"{result.n_tokens} tokens · {result.tokens_per_s:.1f} tokens/s{first}{ending}"


class AnnotateView(QWidget):
    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._build()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        layout = page_layout(self)
        layout.addLayout(self._build_top_bar())
        self.compare_options = CompareOptions()
        self.mode_box = self.compare_options.mode
        self.question = QuestionPanel()
        self.answer = AnswerPanel()
        self.compare = TwoAnswerView()
        self.reject_panel = RejectPanel()
        self.extras = ReviewExtras()
        self.actions = ActionBar()
        self.choices = self.compare.choices
        layout.addWidget(self.compare_options)
        layout.addWidget(self.question)
        layout.addWidget(self.answer, 1)
        layout.addWidget(self.compare, 1)
        layout.addWidget(self.reject_panel)
        layout.addWidget(self.extras)
        layout.addWidget(self.actions)
        layout.addLayout(self._build_ask_row())
        self.show_compare(self._settings.annotate_mode == "compare")

    def _shortcut(self, key: str, handler: Callable[[], None]) -> QShortcut:
        """A key for this page only (active while the page or one of its widgets has focus)."""
        shortcut = QShortcut(QKeySequence(key), self)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(handler)
        return shortcut

    def show_compare(self, compare: bool) -> None:
        """Lay the page out for one answer (accept / edit / reject) or for two answers side by side."""
        self.compare_options.set_mode("compare" if compare else "single")
        self.answer.setVisible(not compare)
        self.compare.setVisible(compare)
        self.actions.show_verdicts(not compare)
        self.extras.show_rating(not compare)

    @property
    def compare_mode(self) -> bool:
        return self.mode_box.currentData() == "compare"

    def _build_top_bar(self) -> QHBoxLayout:
        bar = QHBoxLayout()
        bar.setSpacing(12)
        self.position = plain(QLabel())
        self.position.setObjectName("positionLabel")
        self.queue_filter = QComboBox()
        self.queue_filter.addItem("Not yet annotated", "unannotated")
        self.queue_filter.addItem("All questions", "all")
        self.queue_filter.setCurrentIndex(0 if self._settings.queue_mode == "unannotated" else 1)
        self.held_out = QCheckBox("Include held-out")
        self.held_out.setToolTip("Held-out questions are kept for evaluation and hidden by default")
        self.held_out.setChecked(self._settings.include_held_out)
        self.samples = plain(QLabel())
        self.samples.setObjectName("pillLabel")
        self.retrain_button = QPushButton("Retrain now")
        self.retrain_button.setObjectName("secondaryButton")
        self.retrain_button.setFocusPolicy(Qt.FocusPolicy.TabFocus)  # single-letter keys stay with the page
        self.retrain_button.setToolTip(
            "Train a new version on the answers accepted or edited since the last retrain"
        )
        self.settings_button = QPushButton("Generation settings...")
        self.settings_button.setObjectName("secondaryButton")
        self.settings_button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.settings_button.setToolTip(dialogs.describe_sampling(self._settings.sampling()))
        # The title and the counter keep their whole text at 1,280 px ("No questions in the queu" before):
        # Generation settings... sits in the ask row (see _build_ask_row), and the stretch gives way first.
        for label in (self.position, self.samples):
            label.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Preferred)
        for widget in (self.position, self.queue_filter, self.held_out):
            bar.addWidget(widget)
        bar.addStretch(1)
        for widget in (self.samples, self.retrain_button):
            bar.addWidget(widget)
        return bar

    def _build_ask_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.ask_box = QLineEdit()
        self.ask_box.setObjectName("askBox")
        self.ask_box.setPlaceholderText("Ask your own question, then press Enter")
        self.ask_button = QPushButton("Ask")
        self.ask_button.setObjectName("secondaryButton")
        row.addWidget(self.ask_box, 1)
        row.addWidget(self.ask_button)
        row.addWidget(self.settings_button)  # how answers are written, beside where questions are asked
        return row
