"""GUI fixtures: a qasync loop on pytest-qt's QApplication, and main windows on temporary databases.

Each window gets its own database and settings file under tmp_path and loads the tiny random Llama in
float32 on the CPU. The fixture owns teardown: close the window, stop generation, shut the executors,
and fail the test if anything unexpected reached the error dialog.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import qasync
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from medalign_desktop.engine import SamplingSettings
from medalign_desktop.store import Store, import_questions
from medalign_desktop.ui.annotate.page import Phase
from medalign_desktop.ui.core.settings import AppSettings
from medalign_desktop.ui.core.style import apply_style
from medalign_desktop.ui.shell.main_window import MainWindow, StartupOptions

ANNOTATOR = "Dr Test"
# Short and seeded: the tiny random model's answers are noise (greedy ones are mostly newlines), and
# tests only need them quickly and reproducibly.
TEST_SAMPLING = SamplingSettings(temperature=1.0, top_p=1.0, max_new_tokens=8, seed=7)
QUESTIONS = [
    "What is the first-line treatment for uncomplicated hypertension?",
    "Which vaccine is recommended for adults over 65 against pneumococcus?",
    "What are the red flags of low back pain?",
    "How is iron deficiency anaemia diagnosed?",
    "When should a child with fever be seen urgently?",
]


@pytest.fixture
def qt_loop(qapp):
    """A qasync loop marked as running on the test's QApplication; qtbot.wait* turn it."""
    apply_style(qapp)
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    loop._QEventLoop__is_running = False  # stop() would call app.exit(), which breaks later activation
    qapp.aboutToQuit.disconnect(loop._after_run_forever)
    loop.close()
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)


def write_questions(path: Path, questions: list[str], *, bad_lines: dict[int, str] | None = None) -> Path:
    """A JSONL file in the UltraMedical shape; ``bad_lines`` puts raw text at those 1-based lines."""
    lines = [
        json.dumps({"id": f"q{i + 1}", "conversations": [{"from": "human", "value": q}]})
        for i, q in enumerate(questions)
    ]
    for line, text in sorted((bad_lines or {}).items()):
        lines.insert(line - 1, text)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "workspace.sqlite"


@pytest.fixture
def seeded_db(db_path, tmp_path) -> Path:
    """A database holding the five QUESTIONS, in order."""
    with Store.open(db_path) as store:
        report = import_questions(store, write_questions(tmp_path / "questions.jsonl", QUESTIONS))
    assert report.imported == len(QUESTIONS)
    return db_path


def gui_settings(path: Path, *, annotator: str | None = ANNOTATOR, sampling=TEST_SAMPLING) -> AppSettings:
    settings = AppSettings(QSettings(str(path), QSettings.Format.IniFormat))
    settings.set_sampling(sampling)
    if annotator:
        settings.annotator = annotator
    return settings


@pytest.fixture
def make_window(qtbot, qt_loop, tmp_path, tiny_model_dir, db_path):
    """Build, show and start main windows; returns a factory. Teardown closes and shuts them all down."""
    windows: list[MainWindow] = []

    def make(*, model: Path | None | str = "tiny", annotator: str | None = ANNOTATOR, sampling=TEST_SAMPLING,
             db: Path | None = None, start: bool = True) -> MainWindow:  # fmt: skip
        options = StartupOptions(
            db_path=db or db_path,
            model_dir=tiny_model_dir if model == "tiny" else model,
            load_options={"device": "cpu", "dtype": "float32"},
        )
        settings = gui_settings(tmp_path / f"gui-{len(windows)}.ini", annotator=annotator, sampling=sampling)
        window = MainWindow(options, settings=settings)
        windows.append(window)
        window.resize(1280, 800)
        window.show()
        qtbot.waitExposed(window)
        window.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
        if start:
            window.start_task = window.ctx.tasks.start(window.start(), "start")
        return window

    yield make
    for window in windows:
        window.close()
        wind_down = asyncio.ensure_future(window.wind_down())
        qtbot.waitUntil(wind_down.done, timeout=10000)
        window.shutdown()
        window.deleteLater()
    QApplication.processEvents()
    for window in windows:
        assert not window.ctx.errors.unexpected, window.ctx.errors.unexpected


def wait_phase(qtbot, page, *phases: Phase, timeout: int = 20000) -> None:
    qtbot.waitUntil(lambda: page.phase in phases, timeout=timeout)


def wait_answer(qtbot, page, prompt_text: str | None = None, timeout: int = 20000) -> None:
    """Wait until an answer is stored (verdict buttons live), optionally for a given question."""

    def ready() -> bool:
        if page.phase is not Phase.READY or page.generation_id is None:
            return False
        return prompt_text is None or (page.prompt is not None and page.prompt.text == prompt_text)

    qtbot.waitUntil(ready, timeout=timeout)


def run(qtbot, task, timeout: int = 20000):
    """Turn the event loop until an asyncio task is done, then return its result (raising its error)."""
    qtbot.waitUntil(task.done, timeout=timeout)
    return task.result()


SEED_TOPICS = ["hypertension", "asthma", "sepsis", "migraine", "anaemia", "gout"]


def seed_verdicts(db_path: Path, count: int, *, annotators=("Dr Test", "Dr Lee")) -> None:
    """``count`` verdicts cycling accept / edit / reject over a few topics, with flags and ratings."""
    with Store.open(db_path) as store:
        for i in range(count):
            topic = SEED_TOPICS[i % len(SEED_TOPICS)]
            prompt = store.add_prompt(f"Question {i}: how is {topic} managed in primary care?")
            answer = f"Answer {i}: {topic} is managed with lifestyle advice and medication."
            generation = store.add_generation(prompt, answer, model_version="base", settings={"seed": i})
            kind = ("accept", "edit", "reject")[i % 3]
            fields = {"edit": {"edited_text": answer.replace("lifestyle advice", "guideline-based care")},
                      "reject": {"reject_reason": "incomplete", "safety_flags": ["missing_red_flag"]}}  # fmt: skip
            store.record_verdict(
                generation,
                kind,
                annotator=annotators[i % len(annotators)],
                rating=1 + i % 5,
                **fields.get(kind, {}),
            )
