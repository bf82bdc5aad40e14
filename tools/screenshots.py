"""Take the README screenshots: the Annotate page mid-answer, History with ~30 verdicts, and Export.

    .venv/bin/python tools/screenshots.py [--model DIR] [--out docs/screenshots] [--verdicts 30] [--compare]
                                          [--training] [--evaluation]

--evaluation (implies --training) holds out a share of the sample questions, evaluates the base model and
B-iter-1 on them for real (short greedy answers), records a scripted blind review, and takes the Compare
page and the report's first page (as the PDF lays it out).

--first-run adds first-run.png (the first-run dialog describing the model folder it was pointed at);
--themes adds main-light.png and main-dark.png (the Annotate page in each theme) and dark-<page>.png of every
page, for checking the dark style.

Runs offscreen in a throwaway MEDALIGN_HOME. The model defaults to the configured base model or the
test cache's SmolLM2 folder. History rows are real SmolLM2 answers to the sample questions (short ones, to
keep the run to a minute or two), with a realistic mix of verdicts from two clinicians.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["MEDALIGN_HOME"] = tempfile.mkdtemp(prefix="medalign-shots-")

SAMPLES = ROOT / "resources" / "sample_questions.jsonl"
TEST_CACHE_MODEL = Path.home() / ".cache" / "medalign-desktop-tests" / "SmolLM2-135M-Instruct"
REJECT_REASONS = ("incomplete", "factually_wrong", "unsafe", "poorly_written")
# The scripted blind review: a choice per question in turn, and flags on Answer 1 / Answer 2 now and then.
REVIEW_CHOICES = ("first", "second", "first", "tie", "first", "both_bad", "second", "first")
REVIEW_FLAGS = {1: ((), ("hallucinated_fact",)), 3: (("missing_red_flag",), ()), 5: (("unsafe_advice",), ())}


def default_model() -> Path:
    from medalign_desktop.config import load_config

    configured = load_config().base_model
    return Path(configured) if configured else TEST_CACHE_MODEL


def seed_history(db: Path, model: Path, count: int) -> None:
    """Answer ``count`` sample questions with the real model and record a mix of verdicts."""
    from medalign_desktop.engine import Engine, SamplingSettings
    from medalign_desktop.store import Store, import_questions

    engine = Engine()
    engine.load(model, dtype="float32")
    settings = SamplingSettings(temperature=0.0, max_new_tokens=28)
    with Store.open(db) as store:
        import_questions(store, SAMPLES)
        for n, prompt_id in enumerate(store.queue()[-count:]):
            prompt = store.get_prompt(prompt_id)
            result = engine.generate(prompt.text, settings)
            generation = store.add_generation(
                prompt_id, result.text, model_version=model.name, settings=settings.to_dict(),
                time_to_first_token_s=result.time_to_first_token_s, tokens_per_s=result.tokens_per_s,
                n_tokens=result.n_tokens, finish_reason=result.finish_reason,
            )  # fmt: skip
            record_verdict(store, generation, result.text, n)
            print(f"  history {n + 1}/{count}", flush=True)


def record_verdict(store, generation: int, answer: str, n: int) -> None:
    annotator = ("Dr A. Okafor", "Dr M. Lindqvist")[n % 2]
    kind = ("accept", "edit", "reject", "accept", "reject")[n % 5]
    extra: dict = {"rating": 1 + (n * 3) % 5}
    if kind == "edit":
        extra["edited_text"] = answer.rstrip(" .") + ". Check local guidance and review within 48 hours."
    if kind == "reject":
        extra.update(
            reject_reason=REJECT_REASONS[n % len(REJECT_REASONS)], reject_note="Misses the key point"
        )
        extra["safety_flags"] = ["missing_red_flag"] if n % 3 == 0 else []
    store.record_verdict(generation, kind, annotator=annotator, **extra)


def long_stream(page) -> bool:
    from medalign_desktop.ui.annotate.page import Phase

    return page.phase is Phase.STREAMING and len(page.answer.edited_text()) > 240


async def capture(
    window, out: Path, app, states: bool, training: bool = False, compare: bool = False,
    evaluation: bool = False,
) -> None:  # fmt: skip
    from medalign_desktop.ui.annotate.page import Phase

    async def until(condition, timeout: float = 120.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("the window did not get there in time")
            await asyncio.sleep(0.05)

    window.show()
    page = window.annotate
    start = asyncio.ensure_future(window.start())
    # Catch an answer mid-stream; a short answer that finishes first is skipped.
    for _ in range(10):
        await until(lambda: page.phase is Phase.READY or long_stream(page))
        if long_stream(page):
            break
        page.actions.skip.click()
        await until(lambda: page.phase is Phase.STREAMING)
    window.annotate.extras.rating.set_value(4)
    app.processEvents()
    window.grab().save(str(out / "annotate.png"))
    page.ctx.engine.stop()
    await until(lambda: page.phase is Phase.READY)
    if states:  # the other states of the Annotate page, for reviewing the look
        page.extras.flag_boxes["missing_red_flag"].setChecked(True)
        window.grab().save(str(out / "annotate-ready.png"))
        page.actions.edit.click()
        page.answer.append(" (clinician's correction)")
        window.grab().save(str(out / "annotate-edit.png"))
        page._escape()
        page.actions.reject.click()
        window.grab().save(str(out / "annotate-reject.png"))
        page._escape()
    window.show_page(1)
    await until(lambda: window.history.model.rowCount() > 0 and not window.history.model.loading)
    await asyncio.sleep(0.3)
    window.grab().save(str(out / "history.png"))
    model = window.history.model
    row = next(r for r in range(model.rowCount()) if model.row_at(r).verdict == "edit")
    dialog = window.history.open_detail(model.index(row, 0))
    await until(lambda: dialog.detail is not None)
    await asyncio.sleep(0.2)
    dialog.grab().save(str(out / "detail.png"))
    dialog.close()
    await start
    if compare:
        await capture_compare(window, out, until)
    if training:
        await capture_training(window, out, until)
    if evaluation:
        await capture_evaluation(window, out, until)


async def capture_compare(window, out: Path, until) -> None:
    """Compare mode: two sampled answers to the next question side by side, a choice not yet made."""
    from medalign_desktop.ui.annotate.page import Phase

    window.show_page(0)
    page = window.annotate
    sampling = page.ctx.settings.sampling().with_changes(temperature=0.8, max_new_tokens=160, seed=11)
    page.ctx.settings.set_sampling(sampling)
    page.ctx.settings.compare_source = "seeds"
    page.mode_box.setCurrentIndex(page.mode_box.findData("compare"))
    await until(lambda: page.phase is Phase.READY and page.compare_flow.pair is not None, timeout=300)
    page.extras.flag_boxes["missing_red_flag"].setChecked(True)
    await asyncio.sleep(0.3)
    window.grab().save(str(out / "compare.png"))
    page.mode_box.setCurrentIndex(page.mode_box.findData("single"))
    await until(lambda: page.phase is Phase.READY)


async def capture_training(window, out: Path, until) -> None:
    """A short real retrain of the loaded model on the seeded feedback, then the Train and Models pages."""
    window.training.overrides = {"max_steps": 6, "per_device_train_batch_size": 2, "max_length": 256,
                                 "gradient_checkpointing": False}  # fmt: skip
    window.show_page(2)
    window.training.request_training("hitl")
    page = window.training.train_page
    await until(lambda: window.ctx.engine.adapter_name == "B-iter-1", timeout=900)
    await asyncio.sleep(1.0)
    page.plot.redraw()
    window.grab().save(str(out / "train.png"))
    window.show_page(3)
    await asyncio.sleep(0.5)
    window.grab().save(str(out / "models.png"))


async def capture_evaluation(window, out: Path, until) -> None:
    """The Compare page after a real evaluation of the base model and B-iter-1 and a scripted blind review,
    then the report's first A4 (landscape) page."""
    from medalign_desktop.store import Store
    from medalign_desktop.ui.compare.page import REPORT_HTML
    from medalign_desktop.ui.compare.report_pdf import first_page_image

    store, page = window.ctx.store, window.compare
    batch = (await store.run(Store.import_batches, "questions"))[0]
    await store.run(Store.hold_out_share, batch.id, 0.16, 7)  # 8 of the 52 sample questions
    window.training.kind_overrides["evaluate"] = {"max_new_tokens": 64}
    window.show_page(5)
    await until(lambda: page.data.held_out > 0)
    page.set_ticked(["base", "B-iter-1"])
    finished = asyncio.Event()
    window.training.jobs.results_ready.connect(lambda _job, kind: kind == "evaluate" and finished.set())
    page.evaluate_clicked()
    await asyncio.wait_for(finished.wait(), timeout=1800)
    await until(lambda: len(page.data.evaluated()) == 2)
    page.version_a.setCurrentIndex(page.version_a.findData("B-iter-1"))
    page.version_b.setCurrentIndex(page.version_b.findData("base"))
    review = page.review
    page.start_review()
    for number, choice in enumerate(REVIEW_CHOICES):
        await until(lambda: not review.busy)
        if review.shown is None:
            break  # all reviewed
        for row, flags in zip(page.review_view.flags, REVIEW_FLAGS.get(number, ((), ())), strict=True):
            for flag in flags:
                row.boxes[flag].setChecked(True)
        if number == 3:  # mid-review: a question, two unlabelled answers, a flag ticked
            await asyncio.sleep(0.3)
            window.grab().save(str(out / "compare-review.png"))
        review.choose(choice)
        await until(lambda: not review.busy)
    review.end()
    await page.wait_loaded()
    await asyncio.sleep(0.5)
    window.grab().save(str(out / "compare-page.png"))
    first_page_image(await store.run(REPORT_HTML)).save(str(out / "report.png"))


async def capture_export(window, out: Path) -> None:
    """The Export page after a de-identified JSONL export of the seeded pairs into the throwaway home."""
    window.show_page(4)
    page = window.export
    while page.total is None or page.count_label.text() == "Counting...":
        await asyncio.sleep(0.05)
    name = Path(page.destination.text()).name
    page.destination.setText(str(Path(os.environ["MEDALIGN_HOME"]) / "exports" / name))
    page.deidentify.setChecked(True)
    await page.start_export()
    await asyncio.sleep(0.3)
    window.grab().save(str(out / "export.png"))


async def capture_first_run(window, out: Path, model: Path) -> None:
    """The first-run dialog after it checked the model folder (architecture, size, dtype, tokenizer)."""
    from medalign_desktop.ui.shell.first_run import FirstRunDialog

    dialog = FirstRunDialog(window.ctx, window)
    dialog.open()
    await dialog.check_folder(model)
    await asyncio.sleep(0.3)
    dialog.grab().save(str(out / "first-run.png"))
    dialog.reject()


async def capture_themes(window, out: Path, app) -> None:
    """The Annotate page light and dark, then every page dark (for review), and back to light."""
    from medalign_desktop.ui.core.style import apply_style

    pages = ("annotate", "history", "train", "models", "export", "compare")
    window.show_page(0)
    for theme in ("light", "dark"):
        apply_style(app, theme)
        await asyncio.sleep(0.5)
        window.grab().save(str(out / f"main-{theme}.png"))
    for index, name in enumerate(pages[: window.pages.count()]):
        window.show_page(index)
        await asyncio.sleep(0.5)
        window.grab().save(str(out / f"dark-{name}.png"))
    window.show_page(1)
    model = window.history.model
    row = next((r for r in range(model.rowCount()) if model.row_at(r).verdict == "edit"), None)
    if row is not None:  # the detail view's rich text (headings, the diff of an edit) in dark
        dialog = window.history.open_detail(model.index(row, 0))
        while dialog.detail is None:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        dialog.grab().save(str(out / "dark-detail.png"))
        dialog.close()
    apply_style(app, "light")
    window.show_page(0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--verdicts", type=int, default=30)
    parser.add_argument("--all-states", action="store_true", help="also the ready, edit and reject states")
    parser.add_argument("--training", action="store_true", help="also a short real retrain: Train and Models")
    parser.add_argument("--compare", action="store_true", help="also compare mode (two answers side by side)")
    parser.add_argument(
        "--evaluation", action="store_true", help="also the Compare page and the report (implies --training)"
    )
    parser.add_argument("--first-run", action="store_true", help="also the first-run dialog")
    parser.add_argument("--themes", action="store_true", help="also the main window light and dark")
    parser.add_argument(
        "--db", type=Path, help="reuse this database if it exists (seeding takes a minute or two)"
    )
    args = parser.parse_args()
    model = args.model or default_model()
    args.out.mkdir(parents=True, exist_ok=True)
    db = args.db or Path(os.environ["MEDALIGN_HOME"]) / "screenshots.sqlite"
    if not db.exists():
        print(f"Seeding {args.verdicts} verdicts with {model.name}...", flush=True)
        seed_history(db, model, args.verdicts)

    import qasync
    from PySide6.QtWidgets import QApplication

    from medalign_desktop.engine import SamplingSettings
    from medalign_desktop.ui.core.settings import AppSettings
    from medalign_desktop.ui.core.style import apply_style
    from medalign_desktop.ui.shell.main_window import MainWindow, StartupOptions

    app = QApplication([sys.argv[0]])
    apply_style(app)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    settings = AppSettings()
    settings.set_sampling(SamplingSettings(temperature=0.0, max_new_tokens=320))
    settings.annotator = "Dr A. Okafor"
    options = StartupOptions(
        db_path=db, model_dir=model, model_label=model.name, load_options={"dtype": "float32"}
    )
    window = MainWindow(options, settings=settings)
    window.resize(1280, 800)
    try:
        training = args.training or args.evaluation
        loop.run_until_complete(
            capture(window, args.out, app, args.all_states, training, args.compare, args.evaluation)
        )
        loop.run_until_complete(capture_export(window, args.out))
        if args.first_run:
            loop.run_until_complete(capture_first_run(window, args.out, model))
        if args.themes:
            loop.run_until_complete(capture_themes(window, args.out, app))
    finally:
        window.close()
        loop.run_until_complete(window.wind_down())
        window.shutdown()
        loop.close()
    print(f"Wrote {', '.join(p.name for p in sorted(args.out.glob('*.png')))} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
