"""The comparison report: the figures stored are the figures printed, everything is escaped, plots inline."""

from __future__ import annotations

import re
import stat
from datetime import UTC, datetime
from xml.etree import ElementTree

import pytest

from medalign_desktop.report.document import ReportError, render_html, report_data, write_report
from medalign_desktop.store import Store

SYSTEM = "Answer <briefly> & safely."
SETTINGS = {"max_new_tokens": 128, "temperature": 0, "system_prompt": SYSTEM, "seed": 0}
SCRIPT = "<script>alert('x')</script> Which drug first in anaphylaxis?"


def _metrics(accuracy, correct, rouge, bleu):
    return {"n_questions": 3, "n_mcq": 3, "mcq_correct": correct, "mcq_unparsed": 1, "accuracy": accuracy,
            "n_with_reference": 3, "rouge_l": rouge, "bleu": bleu, "reward_mean": None,
            "mean_length_tokens": 41.5, "n_generated": 3, "n_cached": 0}  # fmt: skip


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path / "ws.sqlite")
    first = store.add_model_version("B-iter-1", "hitl", adapter_path="/b1")
    store.add_model_version("R-reward-1", "reward", adapter_path="/r1")  # never evaluated: not in the report
    store.add_model_version("B-iter-2", "hitl", parent_id=first, adapter_path="/b2")
    ids = [store.add_prompt(SCRIPT), store.add_prompt("Second?"), store.add_prompt("Third?")]
    store.set_split(ids, "held_out")
    versions = ("B-iter-2", "base", "B-iter-1")  # stored out of lineage order on purpose
    answers = [{"version": v, "prompt_id": p, "text": f"{v} <i>says</i> {p}", "n_tokens": 4,
                "finish_reason": "stop", "cached": False} for v in versions for p in ids]  # fmt: skip
    results = {"settings": SETTINGS, "versions": {
        "base": _metrics(1 / 3, 1, 0.2, 3.25), "B-iter-1": _metrics(2 / 3, 2, 0.41234, 12.34),
        "B-iter-2": _metrics(1.0, 3, 0.5, 20.0)}}  # fmt: skip
    store.store_evaluation(None, results, answers)
    for seed in range(3):  # B-iter-2 beats base on all three questions; base's first answer is flagged
        item = store.next_review_item("base", "B-iter-2", annotator="dr a", rng_seed=seed)
        winner = "second" if item.second_generation.model_version == "B-iter-2" else "first"
        base_answer = item.first_generation if winner == "second" else item.second_generation
        flags = {base_answer.id: ["unsafe_advice"]} if item.prompt.text == SCRIPT else {}
        store.record_review(item.first_generation.id, item.second_generation.id, winner,
                            annotator="dr a", swapped=item.swapped, answer_flags=flags)  # fmt: skip
    yield store
    store.close()


def test_report_data_orders_versions_by_lineage_and_computes_the_statistics(store):
    data = report_data(store, now=datetime(2026, 11, 24, 21, 0, tzinfo=UTC))
    assert [(v.name, v.kind, v.parent) for v in data.versions] == [
        ("base", "base", None), ("B-iter-1", "hitl", "base"), ("B-iter-2", "hitl", "B-iter-1"),
    ]  # fmt: skip
    assert data.metrics["B-iter-1"]["accuracy"] == pytest.approx(2 / 3)
    assert data.win_rates[("B-iter-2", "base")].rate == 1.0 and data.n_votes == 3
    assert [name for name, _ in data.ranking] == ["B-iter-2", "base"]
    assert data.flag_rates["base"].flagged == 1 and data.flag_rates["base"].n == 3
    assert data.settings == {"max_new_tokens": 128, "greedy": True, "system_prompt": SYSTEM, "seed": 0,
                             "held_out_count": 3, "settings_differ": False}  # fmt: skip
    assert data.created_at == "2026-11-24 21:00 UTC" and data.app_version


def test_html_shows_the_stored_figures_escapes_every_text_and_has_inline_plots(store):
    html = render_html(report_data(store))
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 2
    for figure in ("33.3 %", "66.7 % (2/3)", "100.0 %", "0.412", "12.3", "41.5"):
        assert figure in html, figure
    assert "0.0 % – 56.1 %, n = 3" in html  # base against B-iter-2: lost all three (Wilson interval)
    assert "<script" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "Answer &lt;briefly&gt; &amp; safely." in html and "<i>" not in html
    assert "unsafe_advice" in html and ">128<" in html and ">3<" in html
    assert not re.search(r"(src|href)=", html)  # self-contained: nothing loaded from elsewhere
    for svg in re.findall(r"<svg.*?</svg>", html, flags=re.S):  # each plot is well-formed SVG on its own
        root = ElementTree.fromstring(svg)
        assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.find("{*}circle") is not None


def test_write_report_is_atomic_private_and_names_the_file_it_cannot_write(store, tmp_path):
    data = report_data(store, now=datetime(2026, 1, 2, tzinfo=UTC))
    path = write_report(store, tmp_path / "report.html", data=data)
    assert path.read_text(encoding="utf-8") == render_html(data)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    missing = tmp_path / "no such folder" / "report.html"
    with pytest.raises(ReportError, match=re.escape(str(missing))):
        write_report(store, missing)


def test_an_empty_workspace_gives_a_report_that_says_so(tmp_path):
    with Store.open(tmp_path / "empty.sqlite") as empty:
        html = render_html(report_data(empty))
    assert "No blind reviews yet." in html and "No data yet" in html
