"""The Export page's form: what to export, in which format, where, the filters, the preview table and the
run row. A mixin of :class:`medalign_desktop.ui.export.page.ExportPage`, which adds the behaviour (the count,
the preview, the export and its cancel); the choices and the summary of a finished export are here too.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QTableView,
    QToolButton,
    QVBoxLayout,
)

from medalign_desktop.store import PAIR_SOURCES
from medalign_desktop.ui.core import labels
from medalign_desktop.ui.core.page_parts import add_filters, date_edit

KINDS = (("pairs", "Preference pairs"), ("sft", "SFT answers (accepted and edited)"))
FORMATS = (("jsonl", "JSONL file"), ("parquet", "Parquet file"), ("datasets", "datasets folder"))
SUFFIXES = {"jsonl": ".jsonl", "parquet": ".parquet", "datasets": ""}
DEFAULT_STEMS = {"pairs": "preference-pairs", "sft": "sft-answers"}
SOURCE_LABELS = {"edit": "Edits", "comparison": "Comparisons", "reject": "Reject + better answer",
                 "imported": "Imported"}  # fmt: skip
NOUNS = {"pairs": ("preference pair", "preference pairs"), "sft": ("answer", "answers")}
EXCLUDE_FLAGGED = "__exclude_flagged__"  # the safety-flag list's "Exclude flagged" entry


def plural(n: int, kind: str) -> str:
    one, many = NOUNS[kind]
    return f"{n:,} {one if n == 1 else many}"


def describe_report(report: Any) -> str:
    """The summary under the Export button: what was written, where, by source, what was masked."""
    head = f"Exported {plural(report.n_records, report.kind)} to {report.path} in {report.duration_s:.1f} s."
    lines = [head]
    by_source = {k: v for k, v in dict(report.counts_by_source).items() if v}
    if by_source:
        lines.append("By source: " + ", ".join(f"{labels.code_label(k)} {v:,}" for k, v in by_source.items()))
    masked = {k: v for k, v in dict(report.n_masked or {}).items() if v}
    if report.n_masked and not masked:  # de-identification ran (it reports every kind) and found nothing
        lines.append("De-identification found nothing to mask.")
    if masked:
        total = sum(masked.values())
        kinds = ", ".join(f"{labels.code_label(k).lower()} {v:,}" for k, v in sorted(masked.items()))
        lines.append(f"De-identification masked {total:,} identifier{'s' if total != 1 else ''}: {kinds}.")
    lines.append(f"Manifest: {report.manifest_path}")
    return "\n".join(lines)


class ExportForm:
    """The widgets of the Export page; ``_build`` (on the page) lays them out."""

    def _build_target(self) -> QGridLayout:
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(8)
        self.kind = self._combo(KINDS)
        self.format = self._combo(FORMATS)
        self.destination = QLineEdit()
        self.destination.setObjectName("destinationEdit")
        self.destination.setPlaceholderText("Where to write the export")
        self.destination.setText(str(self._default_destination()))
        self.browse_button = QPushButton("Choose...")
        self.browse_button.clicked.connect(self.choose_destination)
        self.deidentify = QCheckBox(
            "De-identify (mask names, dates of birth, phone numbers, e-mails, record numbers)"
        )
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.format.currentIndexChanged.connect(self._retarget_destination)
        for column, (caption, widget) in enumerate((("Export", self.kind), ("Format", self.format))):
            grid.addWidget(self._caption(caption), 0, 2 * column)
            grid.addWidget(widget, 0, 2 * column + 1)
        grid.addWidget(self._caption("Save to"), 0, 4)
        grid.addWidget(self.destination, 0, 5)
        grid.addWidget(self.browse_button, 0, 6)
        grid.addWidget(self.deidentify, 1, 1, 1, 6)
        grid.setColumnStretch(5, 1)
        return grid

    def _build_filters(self) -> QVBoxLayout:
        rows = QVBoxLayout()
        rows.setSpacing(8)
        top, bottom = QHBoxLayout(), QHBoxLayout()
        top.setSpacing(10)
        bottom.setSpacing(10)
        self.annotator = self._combo((), everything="All annotators")
        self.model_version = self._combo((), everything="All model versions")
        flags = [(EXCLUDE_FLAGGED, "Exclude flagged")]
        flags += [(code, f"Flagged: {text.lower()}") for code, text in labels.safety_flags()]
        self.flag = self._combo(flags, everything="Any safety flags")
        self.date_from, self.date_to = date_edit(), date_edit()
        self.held_out = QCheckBox("Include held-out questions")
        self.held_out.setToolTip(
            "Held-out questions are kept for evaluation and are left out of exports by default"
        )
        add_filters(
            top,
            (self.annotator, self.model_version, self.flag),
            (self.date_from, self.date_to),
            self.schedule_count,
        )
        top.addWidget(self.held_out)
        top.addStretch(1)
        self.held_out.toggled.connect(self.schedule_count)
        bottom.addWidget(self._caption("Sources"))
        self.source_boxes: dict[str, QCheckBox] = {}
        for code in PAIR_SOURCES:
            box = QCheckBox(SOURCE_LABELS.get(code, labels.code_label(code)))
            box.setChecked(True)
            box.toggled.connect(self._sources_changed)
            self.source_boxes[code] = box
            bottom.addWidget(box)
        self.batch_button = QToolButton()
        self.batch_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.batch_menu = QMenu(self.batch_button)
        self.batch_button.setMenu(self.batch_menu)
        bottom.addWidget(self.batch_button)
        bottom.addStretch(1)
        self._show_batch_text()
        rows.addLayout(top)
        rows.addLayout(bottom)
        return rows

    def _build_preview(self) -> QTableView:
        self.preview = QTableView()
        self.preview.setObjectName("exportPreview")
        self.preview.setModel(self.preview_model)
        self.preview.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.preview.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.preview.setAlternatingRowColors(True)
        self.preview.setWordWrap(False)
        self.preview.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.preview.verticalHeader().hide()
        self.preview.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.preview.verticalHeader().setDefaultSectionSize(30)
        self.preview.horizontalHeader().setHighlightSections(False)
        return self.preview

    def _build_run_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(10)
        self.export_button = QPushButton("Export")
        self.export_button.setObjectName("primaryButton")
        self.export_button.clicked.connect(self.export_clicked)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_export)
        self.cancel_button.hide()
        row.addWidget(self.export_button)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        row.addStretch(0)
        return row

    @staticmethod
    def _caption(text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName("fieldLabel")
        return label

    @staticmethod
    def _combo(choices, everything: str | None = None) -> QComboBox:
        combo = QComboBox()
        if everything is not None:
            combo.addItem(everything, None)
        for code, text in choices:
            combo.addItem(text, code)
        return combo
