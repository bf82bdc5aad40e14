"""Prompts and generations: dedup, the queue, splits, model versions, exact text round-trips."""

from __future__ import annotations

import pytest

from medalign_desktop.store import Store, StoreValidationError

# Non-BMP emoji, RTL Arabic and Hebrew, combining characters (decomposed é), a ZWJ sequence, CJK,
# a NUL, a lone CR, U+2028, and trailing whitespace: all must come back byte for byte.
TRICKY = (
    "Patient 🧑‍⚕️ reports 🤒 fever 𝔸𝕓𝕔 — "
    "مريض يعاني من حمى  חולה עם חום "
    "cafe\u0301 n\u0303 "
    "患者发烧 "
    "nul:\x00: cr:\r: ls:\u2028: tab:\t "
)


def test_same_content_is_stored_once(store: Store) -> None:
    first = store.add_prompt("Dose of amoxicillin?", reference_answer="500 mg tds")
    assert store.add_prompt("Dose of amoxicillin?", reference_answer="500 mg tds") == first
    assert store.add_prompt("Dose of amoxicillin?") != first  # different content, different prompt
    assert store.stats()["prompts"] == 2


def test_prompt_fields_round_trip(store: Store) -> None:
    prompt_id = store.add_prompt(
        "Which drug? A. aspirin B. heparin", answer_key="B", options={"A": "aspirin", "B": "heparin"},
        source="typed", external_id="q-17", split="held_out", reference_answer="Heparin.",
    )  # fmt: skip
    prompt = store.get_prompt(prompt_id)
    assert prompt.options == {"A": "aspirin", "B": "heparin"}
    assert (prompt.answer_key, prompt.external_id, prompt.split, prompt.reference_answer) == (
        "B",
        "q-17",
        "held_out",
        "Heparin.",
    )
    assert prompt.created_at.endswith("Z") and prompt.import_batch_id is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": None}, "text"),
        ({"text": "q", "split": "test"}, "split"),
        ({"text": "q", "options": "A, B"}, "options"),
        ({"text": "\ud800 lone surrogate"}, "text"),
    ],
)
def test_invalid_prompts(store: Store, kwargs, field) -> None:
    with pytest.raises(StoreValidationError) as info:
        store.add_prompt(kwargs.pop("text"), **kwargs)
    assert info.value.field == field


def test_lone_surrogate_message_says_where(store: Store) -> None:
    with pytest.raises(StoreValidationError, match=r"lone surrogate U\+D800 at character 3"):
        store.add_prompt("abc\ud800")


def test_unicode_and_a_megabyte_round_trip_exactly(store: Store) -> None:
    big = ("Ω≈ç√∫ 😀 " * 130_000)[:1_000_000] + "𝟙"  # > 1 MB in UTF-8 too
    assert len(big) > 1_000_000
    prompt_id = store.add_prompt(TRICKY + big, reference_answer=TRICKY)
    gen = store.add_generation(prompt_id, big + TRICKY, settings={"note": TRICKY})
    edited = TRICKY * 3 + big
    feedback_id = store.record_verdict(
        gen, "edit", annotator=TRICKY.strip(), edited_text=edited, notes=TRICKY
    )

    detail = store.feedback_detail(feedback_id)
    assert detail.prompt_text == TRICKY + big
    assert detail.reference_answer == TRICKY
    assert detail.original_text == big + TRICKY
    assert detail.edited_text == edited
    assert detail.notes == TRICKY and detail.annotator == TRICKY.strip()
    assert store.get_generation(gen).settings == {"note": TRICKY}
    assert detail.audit[0].new["edited_text"] == edited
    assert store.history(search="𝔸𝕓𝕔")[0].feedback_id == feedback_id
    assert store.history(search="مريض يعاني")[0].feedback_id == feedback_id


def test_queue_modes_and_held_out(store: Store) -> None:
    a = store.add_prompt("a question")
    b = store.add_prompt("b question")
    c = store.add_prompt("c question", split="held_out")
    assert store.queue() == [a, b]
    assert store.queue(include_held_out=True) == [a, b, c]

    gen = store.add_generation(a, "answer", settings={})
    store.add_generation(b, "answer without verdict", settings={})
    feedback_id = store.record_verdict(gen, "accept", annotator="dr a")
    assert store.queue() == [b]
    assert store.queue(mode="all") == [a, b]

    store.withdraw_verdict(feedback_id, annotator="dr a")  # withdrawn: back in the queue
    assert store.queue() == [a, b]
    with pytest.raises(StoreValidationError) as info:
        store.queue(mode="some")
    assert info.value.field == "mode"


def test_set_split_is_all_or_nothing(store: Store) -> None:
    a, b = store.add_prompt("a question"), store.add_prompt("b question")
    store.set_split([a, b], "held_out")
    assert store.queue() == [] and store.stats()["prompts_held_out"] == 2
    with pytest.raises(StoreValidationError, match="no prompt with id 99"):
        store.set_split([a, 99], "train")
    assert store.get_prompt(a).split == "held_out"
    with pytest.raises(StoreValidationError) as info:
        store.set_split([a], "validation")
    assert info.value.field == "split"


def test_generation_fields_and_model_versions(store: Store) -> None:
    prompt_id = store.add_prompt("q")
    version_id = store.add_model_version("hitl-1", "hitl")
    by_id = store.add_generation(
        prompt_id, "a", model_version=version_id, settings={"temperature": 0.2, "top_p": 0.9},
        time_to_first_token_s=0.21, tokens_per_s=24.5, n_tokens=128, finish_reason="stop",
    )  # fmt: skip
    by_name = store.add_generation(prompt_id, "b", model_version="hitl-1", settings={})
    unregistered = store.add_generation(prompt_id, "c", model_version="base", settings={})
    anonymous = store.add_generation(prompt_id, "", settings={})

    g = store.get_generation(by_id)
    assert (g.model_version_id, g.model_version, g.settings, g.n_tokens, g.finish_reason) == (
        version_id,
        "hitl-1",
        {"temperature": 0.2, "top_p": 0.9},
        128,
        "stop",
    )
    assert (g.time_to_first_token_s, g.tokens_per_s) == (0.21, 24.5)
    assert store.get_generation(by_name).model_version_id == version_id
    assert (
        store.get_generation(unregistered).model_version_id,
        store.get_generation(unregistered).model_version,
    ) == (None, "base")
    assert store.get_generation(anonymous).model_version is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"prompt_id": 42}, "prompt_id"),
        ({"settings": None}, "settings"),
        ({"settings": {"f": object()}}, "settings"),
        ({"model_version": 77}, "model_version"),
        ({"n_tokens": 1.5}, "n_tokens"),
        ({"tokens_per_s": -1}, "tokens_per_s"),
        ({"text": None}, "text"),
    ],
)
def test_invalid_generations(store: Store, kwargs, field) -> None:
    prompt_id = store.add_prompt("q")
    args = {"prompt_id": prompt_id, "text": "a", "settings": {}, **kwargs}
    with pytest.raises(StoreValidationError) as info:
        store.add_generation(args.pop("prompt_id"), args.pop("text"), **args)
    assert info.value.field == field
    assert store.stats()["generations"] == 0


def test_unknown_ids(store: Store) -> None:
    with pytest.raises(StoreValidationError, match="no prompt with id 5"):
        store.get_prompt(5)
    with pytest.raises(StoreValidationError, match="no generation with id 5"):
        store.get_generation(5)
