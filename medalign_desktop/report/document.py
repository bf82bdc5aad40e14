"""The comparison report: every version's metrics, the blind-review statistics and the settings used, as
one self-contained HTML document (inline CSS and SVG, no scripts, no external files) for a clinical
governance meeting. It prints on A4; the app's PDF export renders this same HTML.

:func:`report_data` reads the store (Store methods only, no SQL); :func:`render_html` is pure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from medalign_desktop import __version__
from medalign_desktop.report import stats
from medalign_desktop.report.plots import line_plot, percent
from medalign_desktop.store import tempfiles
from medalign_desktop.store.rows import Vote

BASE = "base"  # the bare base model's version name
MAX_FLAGGED_EXAMPLES = 20
EXCERPT = 400


class ReportError(Exception):
    """The report cannot be written; the message names the file."""


@dataclass(frozen=True)
class VersionInfo:
    name: str
    kind: str  # sft / hitl / dpo / ppo, "base", or "unregistered" (a name no longer in the catalogue)
    parent: str | None
    created_at: str | None


@dataclass(frozen=True)
class FlaggedAnswer:
    version: str
    question: str
    answer: str
    flags: tuple[str, ...]


@dataclass(frozen=True)
class ReportData:
    versions: tuple[VersionInfo, ...]  # lineage (creation) order, the base model first
    metrics: dict[str, dict[str, Any]]  # version -> its newest evaluation metrics
    win_rates: dict[tuple[str, str], stats.WinRate]
    overall: dict[str, stats.WinRate]  # version -> win rate against all others
    ranking: list[tuple[str, float]]  # Bradley-Terry strengths, strongest first
    flag_rates: dict[str, stats.FlagRate]
    settings: dict[str, Any]  # max_new_tokens, greedy, system_prompt, seed, held_out_count, settings_differ
    n_votes: int
    created_at: str
    app_version: str
    flagged: tuple[FlaggedAnswer, ...] = field(default_factory=tuple)


def _lineage(store, names: set[str]) -> tuple[VersionInfo, ...]:
    registered = store.list_model_versions()  # id order: a parent always comes before its children
    by_id = {v.id: v.name for v in registered}
    infos = [VersionInfo(BASE, "base", None, None)] if BASE in names else []
    for version in registered:
        if version.name in names and version.name != BASE:
            parent = by_id.get(version.parent_id, BASE) if version.parent_id is not None else BASE
            infos.append(VersionInfo(version.name, version.kind, parent, version.created_at))
    known = {info.name for info in infos}
    infos += [VersionInfo(name, "unregistered", None, None) for name in sorted(names - known)]
    return tuple(infos)


def _settings(results: list, held_out: int) -> dict[str, Any]:
    newest = results[-1].settings if results else {}
    distinct = {(r.settings.get("max_new_tokens"), r.settings.get("system_prompt")) for r in results}
    return {
        "max_new_tokens": newest.get("max_new_tokens"),
        "greedy": newest.get("temperature", 0) == 0 if newest else None,
        "system_prompt": newest.get("system_prompt"),
        "seed": newest.get("seed"),
        "held_out_count": held_out,
        "settings_differ": len(distinct) > 1,
    }


def _flagged(store, votes: list[Vote]) -> tuple[FlaggedAnswer, ...]:
    seen, examples = set(), []
    for vote in votes:
        sides = (
            (vote.first_version, vote.first_generation_id, vote.first_flags),
            (vote.second_version, vote.second_generation_id, vote.second_flags),
        )
        for version, generation_id, flags in sides:
            if not flags or generation_id is None or generation_id in seen:
                continue
            seen.add(generation_id)
            generation = store.get_generation(generation_id)
            question = store.get_prompt(generation.prompt_id).text
            examples.append(FlaggedAnswer(version, question, generation.text, flags))
    return tuple(examples[:MAX_FLAGGED_EXAMPLES])


def report_data(store, *, now: datetime | None = None) -> ReportData:
    """Everything the report shows, read from the store (the newest evaluation of each version)."""
    results = store.evaluation_results(latest_only=True)
    votes = store.review_votes()
    names = (
        {r.version for r in results} | {v.first_version for v in votes} | {v.second_version for v in votes}
    )
    return ReportData(
        versions=_lineage(store, names),
        metrics={r.version: dict(r.metrics) for r in results},
        win_rates=stats.win_rates(votes),
        overall=stats.overall_win_rates(votes),
        ranking=stats.bradley_terry(votes),
        flag_rates=stats.flag_rates(votes),
        settings=_settings(results, store.held_out_count()),
        n_votes=len(votes),
        created_at=(now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        app_version=__version__,
        flagged=_flagged(store, votes),
    )


# -- rendering ---------------------------------------------------------------------------------------------

CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10.5pt; color: #222; margin: 24px; }
h1 { font-size: 18pt; margin: 0 0 4px; } h2 { font-size: 13pt; margin: 22px 0 8px; border-bottom: 1px solid #ccc; }
.meta { color: #555; margin-bottom: 12px; } .warn { color: #8a4b00; }
table { border-collapse: collapse; margin: 6px 0 12px; page-break-inside: avoid; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; vertical-align: top; }
th { background: #f0f3f7; } td.name, th.name { text-align: left; }
.ci { color: #666; font-size: 9pt; } .plot { max-width: 100%; height: auto; page-break-inside: avoid; }
.excerpt { white-space: pre-wrap; text-align: left; max-width: 520px; }
@page { size: A4; margin: 15mm; }
"""


def _number(value: Any, digits: int = 3) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    return f"{value:.{digits}f}"


def _cell(text: str, css: str = "") -> str:
    return f'<td class="{css}">{escape(text)}</td>' if css else f"<td>{escape(text)}</td>"


def _head(*names: str) -> str:
    cells = "".join(f'<th class="name">{escape(n)}</th>' if i == 0 else f"<th>{escape(n)}</th>"
                    for i, n in enumerate(names))  # fmt: skip
    return f"<tr>{cells}</tr>"


def _accuracy(metrics: dict[str, Any]) -> str:
    n_mcq = metrics.get("n_mcq")
    text = percent(metrics.get("accuracy"))
    return f"{text} ({metrics.get('mcq_correct', 0)}/{n_mcq})" if n_mcq else text


def _metrics_table(data: ReportData) -> str:
    rows = [_head("Version", "Kind", "Parent", "Questions", "MCQ accuracy", "Unparsed", "ROUGE-L", "BLEU",
                  "Reward mean", "Mean length (tokens)", "Win rate (all)", "Flag rate", "BT strength")]  # fmt: skip
    strengths = dict(data.ranking)
    for info in data.versions:
        m = data.metrics.get(info.name, {})
        overall = data.overall.get(info.name)
        flags = data.flag_rates.get(info.name)
        cells = [
            _cell(info.name, "name"), _cell(info.kind, "name"), _cell(info.parent or "—", "name"),
            _cell(str(m.get("n_questions", "—"))), _cell(_accuracy(m)), _cell(str(m.get("mcq_unparsed", "—"))),
            _cell(_number(m.get("rouge_l"))), _cell(_number(m.get("bleu"), 1)), _cell(_number(m.get("reward_mean"))),
            _cell(_number(m.get("mean_length_tokens"), 1)), _cell(percent(overall.rate) if overall else "—"),
            _cell(percent(flags.rate) if flags else "—"), _cell(_number(strengths.get(info.name), 2)),
        ]  # fmt: skip
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _matrix(data: ReportData) -> str:
    names = [info.name for info in data.versions if info.name in data.overall]
    if not names:
        return "<p>No blind reviews yet.</p>"
    rows = [_head("Row beats column", *names)]
    for a in names:
        cells = [_cell(a, "name")]
        for b in names:
            rate = data.win_rates.get((a, b))
            if rate is None:
                cells.append(_cell("—" if a != b else ""))
                continue
            interval = f"{percent(rate.low)} – {percent(rate.high)}, n = {rate.n}"
            cells.append(
                f'<td>{escape(percent(rate.rate))}<br><span class="ci">{escape(interval)}</span></td>'
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _ranking(data: ReportData) -> str:
    if not data.ranking:
        return "<p>No blind reviews yet.</p>"
    rows = [_head("Version", "Rank", "Bradley-Terry strength")]
    for rank, (name, strength) in enumerate(data.ranking, start=1):
        rows.append(f"<tr>{_cell(name, 'name')}{_cell(str(rank))}{_cell(_number(strength, 2))}</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _flags(data: ReportData) -> str:
    if not data.flag_rates:
        return "<p>No blind reviews yet.</p>"
    rows = [_head("Version", "Answers reviewed", "Flagged", "Flag rate", "Flags")]
    for name, rate in data.flag_rates.items():
        detail = ", ".join(f"{flag} {count}" for flag, count in rate.by_flag) or "—"
        cells = [_cell(name, "name"), _cell(str(rate.n)), _cell(str(rate.flagged)), _cell(percent(rate.rate)),
                 _cell(detail, "name")]  # fmt: skip
        rows.append("<tr>" + "".join(cells) + "</tr>")
    table = "<table>" + "".join(rows) + "</table>"
    if not data.flagged:
        return table
    examples = [_head("Version", "Question", "Answer", "Flags")]
    for item in data.flagged:
        cells = [_cell(item.version, "name"), _cell(item.question[:EXCERPT], "excerpt"),
                 _cell(item.answer[:EXCERPT], "excerpt"), _cell(", ".join(item.flags), "name")]  # fmt: skip
        examples.append("<tr>" + "".join(cells) + "</tr>")
    return table + "<h3>Flagged answers</h3><table>" + "".join(examples) + "</table>"


def _settings_table(data: ReportData) -> str:
    s = data.settings
    greedy = {True: "greedy (temperature 0)", False: "sampled", None: "—"}[s.get("greedy")]
    rows = [
        ("Held-out questions", str(s.get("held_out_count", 0))),
        ("Blind reviews", str(data.n_votes)),
        ("Decoding", greedy),
        ("Max new tokens", str(s.get("max_new_tokens") or "—")),
        ("Seed", str(s.get("seed") if s.get("seed") is not None else "—")),
        ("System prompt", s.get("system_prompt") or "(none)"),
    ]
    body = "".join(f"<tr>{_cell(k, 'name')}{_cell(v, 'excerpt')}</tr>" for k, v in rows)
    warn = (
        '<p class="warn">Versions were evaluated with different settings; compare their metrics with care.</p>'
        if s.get("settings_differ")
        else ""
    )
    return f"<table>{body}</table>{warn}"


def _plots(data: ReportData) -> str:
    names = [info.name for info in data.versions]
    accuracy = [data.metrics.get(n, {}).get("accuracy") for n in names]
    overall = [data.overall.get(n) for n in names]
    return line_plot("MCQ accuracy per version", names, accuracy) + line_plot(
        "Blind-review win rate against all other versions (95 % interval)",
        names,
        [w.rate if w else None for w in overall],
        intervals=[(w.low, w.high) if w else None for w in overall],
    )


METHOD_NOTE = (
    "Answers were generated once per version and question with the settings above and reused when "
    "unchanged. MCQ accuracy counts an answer whose chosen option cannot be read as wrong (Unparsed). "
    "ROUGE-L (0–1) and BLEU (0–100) compare answers with the reference answers. In blind reviews a tie or "
    "'both bad' counts half a win for each version; intervals are 95 % Wilson intervals; the ranking is a "
    "Bradley-Terry model fitted by the MM algorithm with a small prior."
)


def render_html(data: ReportData) -> str:
    """The whole report as one HTML document; every text from the data is escaped."""
    meta = f"Generated {data.created_at} by MedAlign Desktop {data.app_version}"
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        "<title>MedAlign model comparison</title>", f"<style>{CSS}</style></head><body>",
        "<h1>Model comparison</h1>", f'<p class="meta">{escape(meta)}</p>',
        "<h2>Evaluation settings</h2>", _settings_table(data),
        "<h2>Versions and metrics</h2>", _metrics_table(data),
        "<h2>Over the iterations</h2>", _plots(data),
        "<h2>Win rates (blind review)</h2>", _matrix(data),
        "<h2>Ranking</h2>", _ranking(data),
        "<h2>Safety flags</h2>", _flags(data),
        "<h2>Method</h2>", f"<p>{escape(METHOD_NOTE)}</p>",
        "</body></html>\n",
    ])  # fmt: skip


def write_report(store, path: str | Path, *, data: ReportData | None = None) -> Path:
    """Write the report to ``path`` atomically (a temporary file renamed over it), readable by the owner only."""
    path = Path(path)
    text = render_html(data if data is not None else report_data(store))
    temporary = tempfiles.temp_path(path)  # registered: removed at the next start should we be killed
    try:
        tempfiles.clean_folder(path.parent, (path.name,))
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ReportError(f"Cannot write the report {path}: {exc.strerror or exc}") from exc
    return path
