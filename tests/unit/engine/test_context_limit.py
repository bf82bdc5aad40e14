"""Counting a question against the model's context before generating (the tiny model reads 512 tokens)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from medalign_desktop.engine.generation import (
    ContextCheck,
    ContextTooLong,
    SamplingSettings,
    check_context,
    context_length,
    count_prompt_tokens,
)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoConfig, AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir), AutoConfig.from_pretrained(tiny_model_dir)


def test_the_count_includes_the_chat_template_and_system_prompt(tiny):
    tokenizer, _config = tiny
    bare = len(tokenizer("What is sepsis?")["input_ids"])
    templated = count_prompt_tokens(tokenizer, "What is sepsis?", "You are careful.")
    assert templated > bare + 3  # role markers and the system prompt count too
    longer = count_prompt_tokens(tokenizer, "What is sepsis?", "You are careful and kind. " * 10)
    assert longer > templated + 30


def test_the_limit_is_the_smallest_known(tiny):
    tokenizer, config = tiny
    assert config.max_position_embeddings == 512
    assert context_length(config, tokenizer) == 512
    assert context_length(config, tokenizer, configured=256) == 256
    assert context_length(SimpleNamespace(), SimpleNamespace(model_max_length=1_000_000)) is None


def test_a_short_question_fits_a_long_one_is_refused_with_both_lengths(tiny):
    tokenizer, config = tiny
    settings = SamplingSettings(max_new_tokens=64)
    short = check_context(tokenizer, config, "What is sepsis?", settings)
    assert short.fits and not short.refused and not short.capped and short.settings_for(settings) is settings

    long_question = "The patient reports chest pain radiating to the left arm. " * 60
    check = check_context(tokenizer, config, long_question, settings)
    assert check.refused and check.prompt_tokens > 512 and check.context_tokens == 512
    message = str(ContextTooLong(check))
    assert f"This question is {check.prompt_tokens:,} tokens; the model reads 512. Shorten it" in message


def test_a_budget_larger_than_the_room_left_is_cut_with_a_warning(tiny):
    tokenizer, config = tiny
    middling = "Chest pain radiating to the left arm. " * 40
    check = check_context(tokenizer, config, middling, SamplingSettings(max_new_tokens=400))
    assert check.prompt_tokens < 512 and check.capped and not check.refused
    room = 512 - check.prompt_tokens
    assert check.settings_for(SamplingSettings(max_new_tokens=400)).max_new_tokens == room
    assert check.message() == (
        f"The answer is limited to {room:,} tokens (of 400 asked for): this question is "
        f"{check.prompt_tokens:,} tokens and the model reads 512."
    )


def test_messages_match_the_reported_case():
    check = ContextCheck(prompt_tokens=12_500, answer_budget=384, context_tokens=8_192)
    assert check.refused
    assert check.message().startswith("This question is 12,500 tokens; the model reads 8,192. Shorten it")
    nearly = ContextCheck(prompt_tokens=8_180, answer_budget=384, context_tokens=8_192)
    assert nearly.refused and "leaves too little room for an answer" in nearly.message()
    assert ContextCheck(10, 384, None).fits and ContextCheck(10, 384, None).message() == ""
