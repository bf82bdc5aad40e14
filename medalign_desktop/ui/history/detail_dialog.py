"""One verdict in full: question, answers (an edit as a diff), reasons, flags, rating, audit trail.

The clinician can correct the verdict (switch accept / reject, change rating and flags) or withdraw it;
both go through the store, which audits them. Nothing here is ever deleted.
"""

from __future__ import annotations

import asyncio
import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QWidget,
)

from medalign_desktop.store import AuditEntry, FeedbackDetail, Store
from medalign_desktop.ui.core import dialogs, labels
from medalign_desktop.ui.core.context import AppContext
from medalign_desktop.ui.core.page_parts import box_layout
from medalign_desktop.ui.core.plain import plain
from medalign_desktop.ui.core.style import html_colour
from medalign_desktop.ui.core.widgets import RatingSelector
from medalign_desktop.ui.history.diff import diff_html, plain_html

SHOWN_AUDIT_FIELDS = (
    "verdict",
    "rating",
    "safety_flags",
    "reject_reason",
    "reject_note",
    "edited_text",
    "notes",
)


def _section(title: str, body_html: str) -> str:
    heading = html_colour("heading")
    return f'<h3 style="color:{heading}; margin-top:16px;">{html.escape(title)}</h3><p>{body_html}</p>'


def _value(name: str, value) -> str:
    if value in (None, [], ""):
        return "none"
    if name == "safety_flags":
        return ", ".join(labels.code_label(v) for v in value)
    if name in ("verdict", "reject_reason"):
        return labels.code_label(value).lower()
    if name == "edited_text":
        return "edited text"
    return str(value)


def audit_summary(entry: AuditEntry) -> str:
    """What one audit entry did, in words: 'verdict: accept → reject; rating: none → 4'."""
    if entry.action in ("withdraw", "undo"):
        reason = (entry.new or {}).get("withdraw_reason")
        return "withdrawn" + (f" ({reason})" if reason and reason != "undo" else "")
    if entry.action == "create":
        new = entry.new or {}
        return ", ".join(
            f"{n}: {_value(n, new.get(n))}" for n in SHOWN_AUDIT_FIELDS if new.get(n) not in (None, [])
        )
    old, new = entry.old or {}, entry.new or {}
    changes = [f"{n}: {_value(n, old.get(n))} → {_value(n, new.get(n))}" for n in SHOWN_AUDIT_FIELDS
               if old.get(n) != new.get(n)]  # fmt: skip
    return "; ".join(changes) or "no visible change"


def verdict_html(detail: FeedbackDetail) -> str:
    colour = labels.VERDICT_COLOURS.get(detail.verdict, "#333")
    verdict = f'<b style="color:{colour};">{html.escape(labels.verdict_label(detail.verdict))}</b>'
    if detail.reject_reason:
        verdict += f" · {html.escape(labels.code_label(detail.reject_reason))}"
    if detail.reject_note:
        verdict += f": {html.escape(detail.reject_note)}"
    lines = [verdict, f"Rating: {detail.rating} / 5" if detail.rating else "Rating: none"]
    lines.append("Safety flags: " + html.escape(_value("safety_flags", list(detail.safety_flags))))
    if detail.notes:
        lines.append(f"Notes: {html.escape(detail.notes)}")
    lines.append(f"By {html.escape(detail.annotator)} on {labels.local_time(detail.created_at)} · "
                 f"model {html.escape(detail.model_version or 'unknown')}")  # fmt: skip
    if detail.withdrawn:
        withdrawn = "This verdict was withdrawn and is not used for training."
        lines.append(f'<b style="color:{html_colour("warning")};">{withdrawn}</b>')
    return "<br>".join(lines)


def detail_html(detail: FeedbackDetail) -> str:
    """The verdict first (what the clinician opened this for), then the texts, then the audit trail."""
    parts = [_section("Verdict", verdict_html(detail)), _section("Question", plain_html(detail.prompt_text))]
    if detail.edited_text is not None:
        legend = (
            f'<br><span style="color:{html_colour("muted")};">'
            "Struck red: removed from the model's answer. Green: added.</span>"
        )
        parts.append(
            _section("Clinician's edit", diff_html(detail.original_text, detail.edited_text) + legend)
        )
        parts.append(_section("Model's original answer", plain_html(detail.original_text)))
    else:
        parts.append(_section("Model answer", plain_html(detail.original_text)))
    if detail.reference_answer:
        parts.append(_section("Reference answer", plain_html(detail.reference_answer)))
    rows = "".join(
        f"<tr><td>{labels.local_time(e.created_at, seconds=True)}</td><td><b>{html.escape(e.action)}</b></td>"
        f"<td>{html.escape(e.annotator)}</td><td>{html.escape(audit_summary(e))}</td></tr>"
        for e in detail.audit
    )
    parts.append(_section("Audit trail", f'<table cellspacing="0" cellpadding="4">{rows}</table>'))
    return "".join(parts)


class FeedbackDetailDialog(QDialog):
    changed = Signal(int)  # the feedback id, after a correction or a withdrawal was stored
    loaded = Signal()

    def __init__(self, context: AppContext, feedback_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = context
        self.feedback_id = feedback_id
        self.detail: FeedbackDetail | None = None
        self.task: asyncio.Task | None = None
        self.setWindowTitle(f"Verdict #{feedback_id}")
        self.resize(980, 720)
        self.view = QTextBrowser()
        self.view.setObjectName("detailView")
        self.view.setOpenLinks(False)
        layout = box_layout(self, margins=(18, 18, 18, 14))
        layout.addWidget(self.view, 1)
        layout.addWidget(self._build_corrections())
        self.status = plain(QLabel())
        self.status.setObjectName("feedbackLabel")
        layout.addWidget(self.status)

    def _build_corrections(self) -> QFrame:
        frame = QFrame()
        frame.setObjectName("card")
        grid = QGridLayout(frame)
        grid.setContentsMargins(16, 12, 16, 12)
        grid.setHorizontalSpacing(12)
        title = QLabel("CORRECT THIS VERDICT")
        title.setObjectName("cardTitle")
        grid.addWidget(title, 0, 0, 1, 4)
        self.verdict = QComboBox()
        self.verdict.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.reason = QComboBox()
        self.reason.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        for code, text in labels.reject_reasons():
            self.reason.addItem(text, code)
        self.verdict.currentIndexChanged.connect(self._verdict_changed)
        self.rating = RatingSelector()
        grid.addWidget(QLabel("Verdict"), 1, 0)
        grid.addWidget(self.verdict, 1, 1)
        grid.addWidget(QLabel("Reject reason"), 1, 2)
        grid.addWidget(self.reason, 1, 3)
        grid.addWidget(QLabel("Rating"), 1, 4)
        grid.addWidget(self.rating, 1, 5)
        flags_row = QHBoxLayout()
        self.flag_boxes: dict[str, QCheckBox] = {}
        for code, text in labels.safety_flags():
            self.flag_boxes[code] = QCheckBox(text)
            flags_row.addWidget(self.flag_boxes[code])
        flags_row.addStretch(1)
        grid.addWidget(QLabel("Safety flags"), 2, 0)
        grid.addLayout(flags_row, 2, 1, 1, 5)
        buttons = QHBoxLayout()
        self.withdraw_button = QPushButton("Withdraw verdict...")
        self.withdraw_button.setObjectName("dangerButton")
        self.save_button = QPushButton("Save changes")
        self.save_button.setObjectName("primaryButton")
        close = QPushButton("Close")
        buttons.addWidget(self.withdraw_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        buttons.addWidget(self.save_button)
        grid.addLayout(buttons, 3, 0, 1, 6)
        self.withdraw_button.clicked.connect(self._withdraw)
        self.save_button.clicked.connect(self._save)
        close.clicked.connect(self.close)
        return frame

    # ------------------------------------------------------------------ loading and showing
    def load(self) -> asyncio.Task:
        self.task = self.ctx.tasks.start(self._load(), "Opening the verdict")
        return self.task

    async def _load(self) -> None:
        self.detail = await self.ctx.store.run(Store.feedback_detail, self.feedback_id)
        self._show(self.detail)
        self.loaded.emit()

    def _show(self, detail: FeedbackDetail) -> None:
        self.view.setHtml(detail_html(detail))
        self.verdict.blockSignals(True)
        self.verdict.clear()
        choices = [("accept", "Accept"), ("reject", "Reject")]
        if detail.edited_text is not None:
            choices.insert(1, ("edit", "Edit (keep the correction)"))
        for code, text in choices:
            self.verdict.addItem(text, code)
        self.verdict.setCurrentIndex(max(0, self.verdict.findData(detail.verdict)))
        self.verdict.blockSignals(False)
        self.reason.setCurrentIndex(max(0, self.reason.findData(detail.reject_reason)))
        self.rating.set_value(detail.rating)
        for code, box in self.flag_boxes.items():
            box.setChecked(code in detail.safety_flags)
        editable = not detail.withdrawn
        for widget in (self.verdict, self.rating, self.save_button, self.withdraw_button,
                       *self.flag_boxes.values()):  # fmt: skip
            widget.setEnabled(editable)
        self._verdict_changed()  # the reason is editable only for a live reject
        if detail.withdrawn:
            self.status.setText("Withdrawn: read-only.")

    def _rejecting(self) -> bool:
        return self.verdict.currentData() == "reject" and not (self.detail and self.detail.withdrawn)

    def _verdict_changed(self) -> None:
        self.reason.setEnabled(self._rejecting())

    # ------------------------------------------------------------------ corrections
    def correction_fields(self) -> dict:
        fields = {"verdict": self.verdict.currentData(), "rating": self.rating.value(),
                  "safety_flags": [c for c, box in self.flag_boxes.items() if box.isChecked()]}  # fmt: skip
        if fields["verdict"] == "reject":
            fields["reject_reason"] = self.reason.currentData()
        return fields

    def _annotator(self) -> str | None:
        if not self.ctx.annotator:
            name = dialogs.ask_annotator_name(self)
            if name:
                self.ctx.settings.annotator = name
        return self.ctx.annotator or None

    def _save(self) -> None:
        annotator = self._annotator()
        if annotator and self.detail and not self.detail.withdrawn:
            self.task = self.ctx.tasks.start(self._save_flow(annotator, self.correction_fields()), "Saving")

    async def _save_flow(self, annotator: str, fields: dict) -> None:
        changed = await self.ctx.store.run(
            Store.change_verdict, self.feedback_id, annotator=annotator, **fields
        )
        self.status.setText("Saved. The change is in the audit trail." if changed else "Nothing changed.")
        await self._after_write(changed)

    def _withdraw(self) -> None:
        question = ("Withdraw this verdict? It stays in the audit trail but is no longer used for "
                    "training or counted in statistics.")  # fmt: skip
        if self.detail and not self.detail.withdrawn and self._confirm_withdraw(question):
            annotator = self._annotator()
            if annotator:
                self.task = self.ctx.tasks.start(self._withdraw_flow(annotator), "Withdrawing the verdict")

    def _confirm_withdraw(self, question: str) -> bool:
        """Separate so tests can answer it; a blocking box is safe here (a plain slot, no coroutine)."""
        return dialogs.confirm(self, "Withdraw verdict", question, "Withdraw")

    async def _withdraw_flow(self, annotator: str) -> None:
        await self.ctx.store.run(Store.withdraw_verdict, self.feedback_id, annotator=annotator)
        await self._after_write(True)
        self.status.setText("Withdrawn. The verdict stays in the audit trail.")

    async def _after_write(self, changed: bool) -> None:
        if changed:
            self.detail = await self.ctx.store.run(Store.feedback_detail, self.feedback_id)
            self._show(self.detail)
            self.changed.emit(self.feedback_id)


def keep_open(dialog: QDialog) -> QDialog:
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    dialog.open()
    return dialog
