"""Reward-model scores of answers: schema v3, storing (upsert, all or nothing), unscored answers, History."""

from __future__ import annotations

import sqlite3

import pytest

from medalign_desktop.store import Store, StoreValidationError
from medalign_desktop.store.schema import migrations as migrations_module


@pytest.fixture
def answers(store: Store) -> dict[str, int]:
    """Two questions (one held out), three answers, a verdict on two of them, a reward and a chat version."""
    p1 = store.add_prompt("Dose of paracetamol for an adult?")
    p2 = store.add_prompt("First aid for a burn?")
    store.set_split([p2], "held_out")
    g1 = store.add_generation(p1, "Up to 4 g per day.", settings={})
    g2 = store.add_generation(p1, "10 g at once.", settings={})
    g3 = store.add_generation(p2, "Cool it under running water.", settings={})
    return {
        "g1": g1, "g2": g2, "g3": g3,
        "f1": store.record_verdict(g1, "accept", annotator="dr a"),
        "f2": store.record_verdict(g2, "reject", annotator="dr a", reject_reason="unsafe"),
        "reward": store.add_model_version("R-reward-1", "reward", adapter_path="/r1"),
        "reward2": store.add_model_version("R-reward-2", "reward", adapter_path="/r2"),
        "chat": store.add_model_version("B-iter-1", "hitl", adapter_path="/b1"),
    }  # fmt: skip


def test_fresh_database_is_at_v3_with_the_scores_table(store: Store) -> None:
    assert store.schema_version == migrations_module.latest_version() >= 3
    assert "answer_scores" in store.db.table_names()


def test_v2_database_migrates_to_v3_keeping_its_data(db_path, monkeypatch) -> None:
    monkeypatch.setattr(migrations_module, "MIGRATIONS", migrations_module.MIGRATIONS[:2])
    with Store.open(db_path) as v2:
        prompt_id = v2.add_prompt("Kept")
        v2.add_generation(prompt_id, "Answer kept", settings={})
        assert "answer_scores" not in v2.db.table_names()
    monkeypatch.undo()
    with Store.open(db_path) as v3:
        assert v3.schema_version == migrations_module.latest_version() and v3.last_backup is not None
        version = v3.add_model_version("R-reward-1", "reward")
        assert v3.unscored_generations(version) == [(1, "Kept", "Answer kept")]


def test_scores_are_stored_and_shown_in_history_for_the_chosen_version(store: Store, answers) -> None:
    assert store.add_scores(answers["reward"], [(answers["g1"], 1.25), (answers["g2"], -0.5)]) == 2
    assert store.add_scores(answers["reward2"], [(answers["g1"], 9.0)]) == 1
    rows = {r.feedback_id: r for r in store.history(score_version_id=answers["reward"])}
    assert rows[answers["f1"]].reward_score == 1.25 and rows[answers["f2"]].reward_score == -0.5
    rows = {r.feedback_id: r for r in store.history(score_version_id=answers["reward2"])}
    assert rows[answers["f1"]].reward_score == 9.0 and rows[answers["f2"]].reward_score is None
    assert all(r.reward_score is None for r in store.history())  # no version asked for: no scores
    filtered = store.history(verdict="reject", score_version_id=answers["reward"])
    assert [(r.feedback_id, r.reward_score) for r in filtered] == [(answers["f2"], -0.5)]


def test_scoring_again_replaces_the_score(store: Store, answers, clock) -> None:
    store.add_scores(answers["reward"], [(answers["g1"], 1.0)])
    store.add_scores(answers["reward"], [(answers["g1"], 2.0), (answers["g3"], 0.0)])
    assert store.answer_scores(answers["reward"]) == {answers["g1"]: 2.0, answers["g3"]: 0.0}
    n_rows = store.db.execute("SELECT count(*) FROM answer_scores").fetchone()[0]
    assert n_rows == 2


def test_unscored_generations_include_held_out_answers(store: Store, answers) -> None:
    reward = answers["reward"]
    everything = store.unscored_generations(reward)
    assert everything == [
        (answers["g1"], "Dose of paracetamol for an adult?", "Up to 4 g per day."),
        (answers["g2"], "Dose of paracetamol for an adult?", "10 g at once."),
        (answers["g3"], "First aid for a burn?", "Cool it under running water."),  # held out: still scored
    ]
    store.add_scores(reward, [(answers["g1"], 0.3), (answers["g3"], 0.1)])
    assert [g for g, _, _ in store.unscored_generations(reward)] == [answers["g2"]]
    assert len(store.unscored_generations(answers["reward2"])) == 3  # per version


@pytest.mark.parametrize(
    ("items", "field", "words"),
    [
        ([(1, 0.5), (2, float("nan"))], "scores[1].score", "finite number"),
        ([(1, "high")], "scores[0].score", "finite number"),
        ([(0, 1.0)], "scores[0].generation_id", "positive integer id"),
        ([(1, 1.0), (999, 1.0)], "scores", "no answers with ids [999]"),
        ([(1,)], "scores", "must be (generation_id, score)"),
    ],
)
def test_bad_scores_store_nothing_and_name_the_item(store: Store, answers, items, field, words) -> None:
    with pytest.raises(StoreValidationError) as info:
        store.add_scores(answers["reward"], items)
    assert str(info.value).startswith(field + ":") and words in str(info.value)
    assert store.answer_scores(answers["reward"]) == {}


def test_only_reward_versions_give_scores(store: Store, answers) -> None:
    with pytest.raises(StoreValidationError, match="'hitl' model, not a reward model"):
        store.add_scores(answers["chat"], [(answers["g1"], 1.0)])
    with pytest.raises(StoreValidationError, match="no model version with id 99"):
        store.unscored_generations(99)


def test_deleting_a_reward_version_deletes_its_scores(store: Store, answers) -> None:
    store.add_scores(answers["reward"], [(answers["g1"], 1.0)])
    store.add_scores(answers["reward2"], [(answers["g1"], 2.0)])
    store.delete_model_version(answers["reward"])
    assert store.answer_scores(answers["reward"]) == {}
    assert store.answer_scores(answers["reward2"]) == {answers["g1"]: 2.0}


def test_history_page_query_still_walks_the_primary_key_with_scores(store: Store, answers) -> None:
    from medalign_desktop.store.history import build_filters, page_sql

    where = build_filters()
    params = {**where.params, "limit": 200, "offset": 0, "score_version_id": answers["reward"]}
    plan = " | ".join(
        row[3] for row in store.db.execute("EXPLAIN QUERY PLAN " + page_sql(where, True), params)
    )
    assert "TEMP B-TREE" not in plan and "SEARCH s USING PRIMARY KEY" in plan  # one lookup per row
    with pytest.raises(sqlite3.ProgrammingError):  # the parameter is required exactly when scores are read
        store.db.execute(page_sql(where, True), where.params | {"limit": 1, "offset": 0}).fetchall()
