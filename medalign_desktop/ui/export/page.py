"""The Export page: preference pairs or SFT answers to JSONL, Parquet or a ``datasets`` folder.

Filters mirror the History page (dates, annotator, model version, safety flags) plus the pair sources, the
imported batches and held-out questions (left out unless asked for). The count of matching records and a
preview of the first ones are read on the store thread after a short pause in filter changes, so typing
a date or ticking boxes never blocks the window. The export itself runs on the store thread too, with a
progress bar and Cancel; a cancelled or failed export leaves nothing behind (the store writes atomically).
"""

from __future__ import annotations

import asyncio
import threading
from datetime import date
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QWidget,
)

from medalign_desktop.store import PairFilter, Store
from medalign_desktop.store.exports.export import ExportCancelled
from medalign_desktop.ui.core import dialogs, labels
from medalign_desktop.ui.core.context import AppContext
from medalign_desktop.ui.core.errors import EXPECTED_ERRORS, readable_message
from medalign_desktop.ui.core.operations import Change
from medalign_desktop.ui.core.page_parts import RefreshedWhenShown, day, page_layout, refill_choices
from medalign_desktop.ui.core.plain import plain
from medalign_desktop.ui.export.form import (
    DEFAULT_STEMS,
    EXCLUDE_FLAGGED,
    SUFFIXES,
    ExportForm,
    describe_report,
    plural,
)
from medalign_desktop.ui.export.preview import (
    PAIR_COLUMNS,
    SFT_COLUMNS,
    PreviewModel,
    pair_row,
    sft_row,
    shown_pair,
)

COUNT_DEBOUNCE_MS = 250
PREVIEW_ROWS = 50
# What changes what an export holds: any verdict or comparison (an import of pairs adds comparisons).
EXPORTED = Change.VERDICTS | Change.COMPARISONS


class ExportPage(RefreshedWhenShown, ExportForm, QWidget):
    counted = Signal(int)  # matching records after a filter change
    export_finished = Signal(object)  # the ExportReport, or None when cancelled or failed

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = context
        self.total: int | None = None
        self.last_report: Any = None
        self._stale = True
        self._epoch = 0
        self._cancel = threading.Event()
        self._export_task: asyncio.Task | None = None
        self._count_timer = QTimer(self, singleShot=True, interval=COUNT_DEBOUNCE_MS)
        self._count_timer.timeout.connect(self.refresh_count)
        self.preview_model = PreviewModel(self)
        self._build()
        context.store.changed.connect(self._store_changed)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        layout = page_layout(self)
        layout.addLayout(self._build_target())
        layout.addLayout(self._build_filters())
        count_row = QHBoxLayout()
        self.count_label = QLabel("Counting...")
        self.count_label.setObjectName("positionLabel")
        self.preview_note = QLabel()
        self.preview_note.setObjectName("metaLabel")
        count_row.addWidget(self.count_label)
        count_row.addStretch(1)
        count_row.addWidget(self.preview_note)
        layout.addLayout(count_row)
        layout.addWidget(self._build_preview(), 1)
        layout.addLayout(self._build_run_row())
        self.result_label = plain(QLabel())  # names the file written
        self.result_label.setObjectName("feedbackLabel")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.result_label)
        self._kind_changed()

    # ------------------------------------------------------------------ destination
    def _default_destination(self) -> Path:
        folder = Path(str(self.ctx.settings.qsettings.value("export/folder", str(Path.home()), type=str)))
        return folder / self._default_name()

    def _default_name(self) -> str:
        kind, fmt = self.kind.currentData() or "pairs", self.format.currentData() or "jsonl"
        return f"{DEFAULT_STEMS[kind]}-{date.today().isoformat()}{SUFFIXES[fmt]}"

    def _retarget_destination(self) -> None:
        """Keep the file name in step with the kind and format: a default name is renamed, any other name
        gets the format's suffix (a folder has none)."""
        text = self.destination.text().strip()
        if not text:
            return
        path = Path(text)
        if any(path.name.startswith(stem) for stem in DEFAULT_STEMS.values()):
            self.destination.setText(str(path.with_name(self._default_name())))
            return
        stem = path.name.removesuffix(".jsonl").removesuffix(".parquet")
        self.destination.setText(str(path.with_name(stem + SUFFIXES[self.format.currentData()])))

    def choose_destination(self) -> None:
        current = self.destination.text().strip() or str(self._default_destination())
        if self.format.currentData() == "datasets":
            chosen, _ = QFileDialog.getSaveFileName(self, "Export to a datasets folder (name it)", current)
        else:
            suffix = SUFFIXES[self.format.currentData()]
            chosen, _ = QFileDialog.getSaveFileName(self, "Export to", current, f"*{suffix};;All files (*)")
        if chosen:
            self.destination.setText(chosen)
            self._retarget_destination()

    def destination_path(self) -> Path | None:
        text = self.destination.text().strip()
        return Path(text).expanduser() if text else None

    # ------------------------------------------------------------------ filters
    def filters(self) -> PairFilter:
        flag = self.flag.currentData()
        return PairFilter(
            date_from=day(self.date_from),
            date_to=day(self.date_to),
            annotator=self.annotator.currentData(),
            model_version=self.model_version.currentData(),
            sources=tuple(code for code, box in self.source_boxes.items() if box.isChecked()),
            flags=(flag,) if flag not in (None, EXCLUDE_FLAGGED) else (),
            exclude_flagged=flag == EXCLUDE_FLAGGED,
            include_held_out=self.held_out.isChecked(),
            import_batch_ids=self.selected_batches(),
        )

    def selected_batches(self) -> tuple[int, ...] | None:
        """None (every batch) while all are ticked, else the ticked ones' ids."""
        actions = self.batch_menu.actions()
        if all(action.isChecked() for action in actions):
            return None
        return tuple(action.data() for action in actions if action.isChecked())

    def _sources_changed(self) -> None:
        self._show_batch_text()
        self.schedule_count()

    def _kind_changed(self) -> None:
        pairs = self.kind.currentData() == "pairs"
        for box in self.source_boxes.values():
            box.setEnabled(pairs)  # SFT answers are accepted and edited verdicts: no sources to choose
        self._show_batch_text()
        self._retarget_destination()
        self.schedule_count()

    def _show_batch_text(self) -> None:
        actions = self.batch_menu.actions()
        ticked = sum(action.isChecked() for action in actions)
        if not actions:
            text = "No imported batches"
        elif ticked == len(actions):
            text = f"All imported batches ({len(actions)})"
        else:
            text = f"Imported batches: {ticked} of {len(actions)}"
        self.batch_button.setText(text)
        usable = bool(actions) and self.kind.currentData() == "pairs"
        self.batch_button.setEnabled(usable and self.source_boxes["imported"].isChecked())

    def schedule_count(self) -> None:
        self._count_timer.start()

    def refresh(self) -> None:
        """Reload the choices of the filter lists, then count again."""
        self._stale = False
        self.ctx.tasks.start(self._refresh_choices(), "Loading the export filters")

    async def _refresh_choices(self) -> None:
        names = await self.ctx.store.run(Store.annotators)
        versions = await self.ctx.store.run(Store.model_version_names)
        refill_choices(self.annotator, names)
        refill_choices(self.model_version, versions)
        self._fill_batches(await self.ctx.store.run(Store.import_batches, "pairs"))
        self.refresh_count()

    def _fill_batches(self, batches: list[Any]) -> None:
        unticked = {a.data() for a in self.batch_menu.actions() if not a.isChecked()}
        self.batch_menu.clear()
        for batch in batches:
            name = Path(batch.source_path).name
            when = labels.local_time(batch.created_at)
            action = self.batch_menu.addAction(f"{name} · {batch.n_imported:,} pairs · {when}")
            action.setCheckable(True)
            action.setChecked(batch.id not in unticked)
            action.setData(batch.id)
            action.toggled.connect(self._sources_changed)
        self._show_batch_text()

    # ------------------------------------------------------------------ count and preview
    def refresh_count(self) -> asyncio.Task | None:
        """Count and preview what the filters match, on the store thread; late answers are dropped."""
        self._count_timer.stop()
        if not self.ctx.store.is_open:
            return None
        self._epoch += 1
        return self.ctx.tasks.start(self._count(self._epoch, self.kind.currentData(), self.filters()),
                                    "Counting what to export")  # fmt: skip

    async def _count(self, epoch: int, kind: str, filters: PairFilter) -> None:
        self.count_label.setText("Counting...")
        try:
            total, records = await self.ctx.store.preview_export(kind, filters, PREVIEW_ROWS)
        except EXPECTED_ERRORS as exc:  # e.g. "From" after "To": say so here, not in a dialog per click
            if epoch == self._epoch:
                self.total = 0
                self.count_label.setText(readable_message(exc)[0])
                self.preview_model.set_rows((), [])
                self.export_button.setEnabled(False)
            return
        if epoch != self._epoch:
            return  # the filters changed while this was read
        self.total = total
        self.count_label.setText(f"{plural(total, kind)} match")
        if kind == "pairs":
            self.preview_model.set_rows(PAIR_COLUMNS, [pair_row(p) for p in records], shown_pair)
        else:
            self.preview_model.set_rows(SFT_COLUMNS, [sft_row(example) for example in records])
        self._size_columns()
        shown = len(records)
        self.preview_note.setText(f"Preview: the first {shown}" if total > shown else "")
        self.export_button.setEnabled(self._export_task is None and total > 0)
        self.counted.emit(total)

    def _size_columns(self) -> None:
        header = self.preview.horizontalHeader()
        for column in range(self.preview_model.columnCount()):
            mode = QHeaderView.ResizeMode.Stretch if column < 3 else QHeaderView.ResizeMode.ResizeToContents
            header.setSectionResizeMode(column, mode)

    # ------------------------------------------------------------------ export
    def export_clicked(self) -> None:
        dest = self.destination_path()
        if dest is not None and dest.exists() and not self._confirm_overwrite(dest):
            return
        self.start_export()

    def _confirm_overwrite(self, dest: Path) -> bool:
        return dialogs.confirm(self, "Replace the export?", f"{dest} already exists. Replace it?", "Replace")

    def start_export(self) -> asyncio.Task | None:
        """Export with the current choices on the store thread; Cancel stops it and writes nothing."""
        dest = self.destination_path()
        if dest is None:
            self._show_result("Choose where to write the export first.", problem=True)
            return None
        kind, fmt, filters = self.kind.currentData(), self.format.currentData(), self.filters()
        cancel = self._cancel = threading.Event()
        # A bound method of this page (a QObject): progress emitted on the store thread arrives queued.
        self.ctx.store.export_progress.connect(self._show_progress)
        self._set_running(True)
        self._show_result(f"Exporting to {dest}...", problem=False)

        async def flow() -> None:
            report = None
            try:
                report = await self.ctx.store.export(
                    kind,
                    dest,
                    fmt=fmt,
                    filters=filters,
                    deidentify=self.deidentify.isChecked(),
                    cancel=cancel,
                )
            except ExportCancelled:
                self._show_result("Export cancelled: nothing was written.", problem=True)
            except EXPECTED_ERRORS as exc:
                self._show_result(f"The export failed: {readable_message(exc)[0]}", problem=True)
            except BaseException:
                self._show_result("The export failed (see the message).", problem=True)
                raise
            finally:
                self.ctx.store.export_progress.disconnect(self._show_progress)
                self._set_running(False)
            if report is not None:
                self.last_report = report
                self.ctx.settings.qsettings.setValue("export/folder", str(Path(report.path).parent))
                self._show_result(describe_report(report), problem=False)
            self.export_finished.emit(report)

        self._export_task = self.ctx.tasks.start(flow(), "Exporting")
        return self._export_task

    def cancel_export(self) -> None:
        self._cancel.set()
        self.cancel_button.setEnabled(False)
        self.progress.setFormat("Cancelling...")

    def _set_running(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        self.export_button.setEnabled(not running and bool(self.total))
        for widget in (self.kind, self.format, self.destination, self.browse_button, self.deidentify):
            widget.setEnabled(not running)
        if running:
            self.progress.setRange(0, 0)  # busy until the first progress report gives a total
            self.progress.setFormat("%v of %m")
        else:
            self._export_task = None

    def _show_progress(self, done: int, total: int) -> None:
        if self._cancel.is_set():
            return
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(min(done, total) if total else 0)

    def _show_result(self, text: str, *, problem: bool) -> None:
        self.result_label.setText(text)
        self.result_label.setProperty("problem", problem)
        self.result_label.style().unpolish(self.result_label)  # re-read the style sheet for the property
        self.result_label.style().polish(self.result_label)

    # ------------------------------------------------------------------ staying current
    def _store_changed(self, changes: Change) -> None:
        if changes & EXPORTED:
            self.mark_stale()

    def shutdown(self) -> None:
        """Ask a running export to stop (the window is closing)."""
        self._cancel.set()
