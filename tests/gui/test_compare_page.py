"""The Compare page end to end on the tiny model: held-out marking (H, and a share of an import), an
evaluation job of two versions with the real evaluate program, a blind review by keyboard, the win-rate
matrix, and the HTML and PDF reports, each checked against what the store recorded."""

from __future__ import annotations

import random
import shutil
import stat
import subprocess

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from medalign_desktop.store import Store
from medalign_desktop.ui.compare.page import NO_HELD_OUT, NOT_EVALUATED, TOO_FEW
from medalign_desktop.ui.compare.report_pdf import printable_html, write_pdf
from medalign_desktop.ui.compare.results import metric_cells
from medalign_desktop.ui.core import operations as ops
from tests.gui.conftest import QUESTIONS, run, wait_answer

MCQ = [
    ("Which drug is first-line for anaphylaxis?\nA. Cetirizine\nB. Adrenaline\nC. Salbutamol",
     {"A": "Cetirizine", "B": "Adrenaline", "C": "Salbutamol"}, "B",
     "B. Intramuscular adrenaline is the first-line treatment for anaphylaxis."),
    ("Which vitamin deficiency causes scurvy?\nA. Vitamin C\nB. Vitamin D\nC. Vitamin K",
     {"A": "Vitamin C", "B": "Vitamin D", "C": "Vitamin K"}, "A",
     "A. Scurvy is caused by a lack of vitamin C."),
    ("Which organ produces insulin?\nA. Liver\nB. Kidney\nC. Pancreas",
     {"A": "Liver", "B": "Kidney", "C": "Pancreas"}, "C",
     "C. The beta cells of the pancreas produce insulin."),
]  # fmt: skip
OPEN_QUESTIONS = [
    ("How is iron deficiency anaemia diagnosed?", "A low ferritin with a microcytic anaemia."),
    ("When should a child with fever be seen urgently?", "With a non-blanching rash, or when drowsy."),
]
REVIEW_SEED = 4
VOTE_KEYS = (
    (Qt.Key.Key_1, "first"),
    (Qt.Key.Key_2, "second"),
    (Qt.Key.Key_T, "tie"),
    (Qt.Key.Key_B, "both_bad"),
)


def press(qtbot, widget, key) -> None:
    qtbot.keyClick(QApplication.focusWidget() or widget, key)


def call(qtbot, window, name: str, *args, **kwargs):
    """Run the store operation ``name`` as a page would (a write reports its change); other Store methods
    (the job manager's) directly."""
    op = ops.all_operations().get(name)
    store = window.ctx.store
    work = store.run(op, *args, **kwargs) if op else store.call(getattr(Store, name), *args, **kwargs)
    return run(qtbot, window.ctx.tasks.start(work))


def test_h_holds_the_question_out_and_a_share_of_an_import_moves(qtbot, make_window, seeded_db):
    window = make_window(db=seeded_db)
    page = window.annotate
    wait_answer(qtbot, page, QUESTIONS[0])
    prompt_id = page.prompt.id
    assert not page.held_out_toggle.isChecked()

    press(qtbot, page, Qt.Key.Key_H)
    qtbot.waitUntil(lambda: page.held_out_toggle.isChecked())
    assert call(qtbot, window, "get_prompt", prompt_id).split == "held_out"
    assert (
        page.question.meta.text().endswith("held out") and "never trained on" in page.actions.feedback.text()
    )
    assert page.actions.accept.isEnabled()  # still answerable and reviewable

    page.ask_box.setFocus()  # typing: H is a letter of the question, not the toggle
    qtbot.keyClicks(page.ask_box, "H")
    assert page.ask_box.text() == "H" and page.held_out_toggle.isChecked()
    page.ask_box.clear()
    page.setFocus()
    press(qtbot, page, Qt.Key.Key_H)
    qtbot.waitUntil(lambda: not page.held_out_toggle.isChecked())
    assert call(qtbot, window, "get_prompt", prompt_id).split == "train"

    # File > Hold out a share of an import: 40 % of the five imported questions, seeded.
    dialog = run(qtbot, window.choose_hold_out_share())
    assert dialog.batch.count() == 1 and "questions.jsonl" in dialog.batch.currentText()
    dialog.percent.setValue(40)
    dialog.seed.setValue(3)
    with qtbot.waitSignal(dialog.moved, timeout=10000) as moved:
        dialog.accept()
    assert moved.args == [2] and "2 questions of questions.jsonl moved" in dialog.report_box.text()
    assert call(qtbot, window, "held_out_count") == 2
    window.show_page(5)
    compare = window.compare
    qtbot.waitUntil(lambda: compare.data.held_out == 2)
    assert compare.held_out_label.text() == "2 held-out questions"
    assert compare.metrics_section.message.text() == NOT_EVALUATED
    assert compare.matrix_section.message.text() == TOO_FEW


def seed_held_out(db_path, adapters) -> list[int]:
    with Store.open(db_path) as store:
        ids = [
            store.add_prompt(text, reference_answer=ref, answer_key=key, options=options, split="held_out")
            for text, options, key, ref in MCQ
        ]
        ids += [store.add_prompt(q, reference_answer=ref, split="held_out") for q, ref in OPEN_QUESTIONS]
        store.add_prompt("A training question that is never evaluated.")
        store.add_model_version("B-iter-1", "hitl", adapter_path=str(adapters[0]))
        store.add_model_version("D-dpo-1", "dpo", adapter_path=str(adapters[1]))
    return ids


def expected_rate(votes) -> tuple[float, int]:
    """B-iter-1's win rate over the base model from (versions as shown, choice): ties and both bad half."""
    points = 0.0
    for versions, choice in votes:
        if choice in ("first", "second"):
            winner = versions[0] if choice == "first" else versions[1]
            points += winner == "B-iter-1"
        else:
            points += 0.5
    return points / len(votes), len(votes)


def test_evaluate_two_versions_review_blind_and_export_the_report(
    qtbot, make_window, db_path, tiny_adapters, tmp_path
):
    held_out = seed_held_out(db_path, tiny_adapters)
    window = make_window()
    run(qtbot, window.start_task)
    window.training.kind_overrides["evaluate"] = {"max_new_tokens": 8, "batch_size": 2}
    page = window.compare
    window.show_page(5)
    qtbot.waitUntil(lambda: page.data.held_out == 5)
    listed = [
        page.version_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(page.version_list.count())
    ]
    assert listed == ["base", "B-iter-1", "D-dpo-1"]
    assert page.metrics_section.message.text() == NOT_EVALUATED and not page.review_button.isEnabled()

    page.set_ticked(["base", "B-iter-1"])
    with qtbot.waitSignal(window.training.jobs.results_ready, timeout=180000) as ready:
        qtbot.mouseClick(page.evaluate_button, Qt.MouseButton.LeftButton)
    assert ready.args[1] == "evaluate"
    qtbot.waitUntil(lambda: page.data.evaluated() == ["base", "B-iter-1"], timeout=20000)
    results = {r.version: r for r in call(qtbot, window, "evaluation_results")}
    assert sorted(results) == ["B-iter-1", "base"]
    for result in results.values():
        assert result.metrics["n_questions"] == 5 and result.metrics["n_mcq"] == 3
    kinds = {"base": "base", "B-iter-1": "hitl"}
    assert page.metrics.texts() == [metric_cells(n, kinds[n], results[n]) for n in ("base", "B-iter-1")]
    row = page.metrics.texts()[1]
    metrics = results["B-iter-1"].metrics
    assert row[3].startswith(f"{metrics['accuracy']:.0%} ({metrics['mcq_correct']} of 3")
    assert row[4] == f"{metrics['rouge_l']:.3f}" and row[5] == f"{metrics['bleu']:.1f}"
    assert page.matrix_section.message.text().startswith("No blind-review votes yet")

    # Blind review by keyboard: B-iter-1 (A) against the base model (B); S skips the first question shown,
    # which does not come up again; every other held-out question gets a vote.
    page.review.rng = random.Random(REVIEW_SEED)
    page.version_a.setCurrentIndex(page.version_a.findData("B-iter-1"))
    page.version_b.setCurrentIndex(page.version_b.findData("base"))
    qtbot.mouseClick(page.review_button, Qt.MouseButton.LeftButton)
    view, review = page.review_view, page.review
    qtbot.waitUntil(lambda: review.shown is not None and not review.busy, timeout=10000)
    skipped = review.shown.prompt_id
    press(qtbot, view, Qt.Key.Key_S)
    qtbot.waitUntil(lambda: review.shown is not None and not review.busy, timeout=10000)
    assert "Skipped" in view.feedback.text() and "1 skipped" in view.position.text()
    shown, votes = [], []
    for number, (key, choice) in enumerate(VOTE_KEYS):
        qtbot.waitUntil(lambda: review.shown is not None and not review.busy, timeout=10000)
        item = review.shown
        assert view.answers.texts() == tuple(
            call(qtbot, window, "get_generation", g).text for g in item.generation_ids
        )
        captions = " ".join(panel.status.text() for panel in view.answers.panels)
        assert "B-iter-1" not in captions and "base" not in captions  # unlabelled
        if number == 0:
            view.flags[0].boxes["unsafe_advice"].setChecked(True)
        if number == 1:
            view.flags[1].boxes["hallucinated_fact"].setChecked(True)
            view.flags[1].boxes["privacy"].setChecked(True)
        with qtbot.waitSignal(review.vote_saved, timeout=10000):
            press(qtbot, view, key)
        shown.append(item)
        votes.append((item.versions, choice))
    qtbot.waitUntil(lambda: view.question.text.toPlainText().startswith("All reviewed (1 skipped)"))
    assert sorted([item.prompt_id for item in shown] + [skipped]) == sorted(held_out)
    assert {item.swapped for item in shown} == {True, False}  # the order really is drawn

    stored = {v.comparison_id: v for v in call(qtbot, window, "review_votes")}
    for comparison_id, item, (_, choice) in zip(review.saved, shown, votes, strict=True):
        comparison = call(qtbot, window, "get_comparison", comparison_id)
        assert (comparison.first_generation_id, comparison.second_generation_id) == item.generation_ids
        assert comparison.swapped == item.swapped and comparison.choice == choice
        assert comparison.mode == "versions"
        vote = stored[comparison_id]
        assert (vote.first_version, vote.second_version) == item.versions
    first_vote, second_vote = stored[review.saved[0]], stored[review.saved[1]]
    assert first_vote.first_flags == ("unsafe_advice",) and first_vote.second_flags == ()
    assert second_vote.first_flags == () and set(second_vote.second_flags) == {"hallucinated_fact", "privacy"}

    press(qtbot, view, Qt.Key.Key_Escape)  # back to the results; the matrix has every vote
    assert page.stack.currentIndex() == 0
    rate, n = expected_rate(votes)
    qtbot.waitUntil(lambda: (page.matrix.rate_text("B-iter-1", "base") or "").endswith(f"· n {n}"))
    assert page.matrix.rate_text("B-iter-1", "base").startswith(f"{rate:.0%}\n")
    assert page.matrix.rate_text("base", "B-iter-1").startswith(f"{1 - rate:.0%}\n")

    # The report: HTML with the stored figures, and an A4 PDF of the same report; both owner-only.
    html_path, pdf_path = tmp_path / "report.html", tmp_path / "report.pdf"
    run(qtbot, page.export_report(html_path))
    html = html_path.read_text(encoding="utf-8")
    for name, result in results.items():
        assert name in html
        m = result.metrics
        assert f"{m['rouge_l']:.3f}" in html and f"{m['bleu']:.1f}" in html
        assert f"({m['mcq_correct']}/{m['n_mcq']})" in html
    run(qtbot, page.export_report(pdf_path))
    assert pdf_path.read_bytes()[:5] == b"%PDF-" and pdf_path.stat().st_size > 2000
    for path in (html_path, pdf_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(pdf_path) in page.status.text()


def test_empty_page_says_what_to_do(qtbot, make_window, seeded_db, tmp_path):
    with Store.open(seeded_db) as store:
        store.add_model_version("B-iter-1", "hitl", adapter_path=str(tmp_path / "b1"))
        store.add_model_version("R-reward-1", "reward", adapter_path=str(tmp_path / "r1"))
    window = make_window(db=seeded_db, model=None)
    run(qtbot, window.start_task)
    window.show_page(5)
    page = window.compare
    qtbot.waitUntil(lambda: page.metrics_section.showing_message and page.data.versions != ())
    assert page.ticked_versions() == ["base", "B-iter-1"]  # answering versions only: no reward model
    assert page.metrics_section.message.text() == NO_HELD_OUT
    assert page.matrix_section.message.text() == TOO_FEW
    page.evaluate_clicked()
    assert page.status.text() == NO_HELD_OUT and page.status.property("problem")

    call(qtbot, window, "set_split", [1], "held_out")  # a held-out question, but no model to answer it
    qtbot.waitUntil(lambda: page.data.held_out == 1)
    assert page.metrics_section.message.text() == NOT_EVALUATED
    page.evaluate_clicked()
    qtbot.waitUntil(lambda: page.status.text().startswith("Load a model first"))
    assert page.status.property("problem")


def test_report_pdf_draws_the_svg_plots_as_images(qapp, tmp_path):
    svg = '<svg width="120" height="60" viewBox="0 0 120 60"><line x1="0" y1="0" x2="120" y2="60" stroke="red"/></svg>'
    html = f"<html><head></head><body><p>Accuracy</p>{svg}<svg>not a plot</svg></body></html>"
    text, images = printable_html(html)
    assert "<svg" not in text and '<img src="plot-1.png" width="120" height="60">' in text
    assert list(images) == ["plot-1.png"] and images["plot-1.png"].width() == 240  # drawn at twice the size
    path = write_pdf(html, tmp_path / "plots.pdf")
    assert path.read_bytes()[:5] == b"%PDF-" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["plots.pdf"]  # no temporary file left behind


def _several_versions_report(tmp_path) -> str:
    """A report of six versions (base and five HITL iterations), evaluated on three held-out questions."""
    from medalign_desktop.report.document import render_html, report_data

    def metrics(accuracy, correct):
        return {"n_questions": 3, "n_mcq": 3, "mcq_correct": correct, "mcq_unparsed": 1, "accuracy": accuracy,
                "n_with_reference": 3, "rouge_l": 0.41234, "bleu": 12.34, "reward_mean": 0.123,
                "mean_length_tokens": 41.5, "n_generated": 3, "n_cached": 0}  # fmt: skip

    with Store.open(tmp_path / "report.sqlite") as store:
        parent, names = None, ["base"]
        for i in range(1, 6):
            parent = store.add_model_version(f"B-iter-{i}", "hitl", parent_id=parent, adapter_path=f"/b{i}")
            names.append(f"B-iter-{i}")
        ids = [store.add_prompt(f"Question {i}?") for i in range(3)]
        store.set_split(ids, "held_out")
        answers = [{"version": v, "prompt_id": p, "text": f"{v} says {p}", "n_tokens": 4,
                    "finish_reason": "stop", "cached": False} for v in names for p in ids]  # fmt: skip
        results = {"settings": {"max_new_tokens": 128, "temperature": 0, "system_prompt": "", "seed": 0},
                   "versions": {v: metrics(0.1 * (k + 1), k % 3) for k, v in enumerate(names)}}  # fmt: skip
        store.store_evaluation(None, results, answers)
        return render_html(report_data(store))


def _ppm_pixels(path) -> tuple[int, int, bytes]:
    """(width, height, RGB bytes) of a binary PPM (P6) as pdftoppm writes it."""
    data = path.read_bytes()
    fields, position = [], 0
    while len(fields) < 4:  # magic, width, height, maxval: separated by white space
        while data[position : position + 1].isspace():
            position += 1
        end = position
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[position:end])
        position = end
    assert fields[0] == b"P6"
    return int(fields[1]), int(fields[2]), data[position + 1 :]


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="needs poppler-utils (pdftoppm, pdftotext)")
def test_report_pdf_pages_keep_inside_the_text_area_and_break_no_word(qapp, tmp_path):
    """A4 landscape: the metrics table and the plots stay within the margins, headers and figures whole."""
    from medalign_desktop.ui.compare.report_pdf import A4_MM, MARGIN_MM

    path = write_pdf(_several_versions_report(tmp_path), tmp_path / "report.pdf")
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    )
    for whole in ("Version", "Questions", "Unparsed", "strength", "10.0 % (0/3)", "60.0 % (2/3)", "B-iter-5"):
        assert whole in text.stdout, whole
    dpi = 40
    subprocess.run(["pdftoppm", "-r", str(dpi), str(path), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.ppm"))
    assert len(pages) >= 2
    inset = (MARGIN_MM - 2) / 25.4 * dpi  # the margin, less 2 mm of tolerance for anti-aliasing
    for page in pages:
        width, height, pixels = _ppm_pixels(page)
        assert abs(width - A4_MM.width() / 25.4 * dpi) <= 2  # landscape
        inked = [
            (x, y)
            for y in range(height)
            for x in range(width)
            if (x < inset or x >= width - inset or y < inset or y >= height - inset)
            and min(pixels[3 * (y * width + x) : 3 * (y * width + x) + 3]) < 200
        ]
        assert not inked, f"{page.name}: {len(inked)} dark pixels in the margin, e.g. {inked[:5]}"
