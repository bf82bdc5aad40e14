"""Fixtures for the store tests: a fresh database per test, a controllable clock, quick builders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from medalign_desktop.store import Store


class FakeClock:
    """Advances one second per call from a fixed start, so timestamps are predictable and distinct."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> str:
        value = self.now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.now += timedelta(seconds=1)
        return value

    def jump_to(self, moment: datetime) -> None:
        self.now = moment


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "workspace" / "medalign.sqlite"


@pytest.fixture
def store(db_path: Path):
    opened = Store.open(db_path)
    yield opened
    opened.close()


@pytest.fixture
def clock(store: Store) -> FakeClock:
    fake = FakeClock()
    store.clock = fake
    return fake


@pytest.fixture
def make_generation(store: Store) -> Callable[..., int]:
    """A prompt + generation in one call; returns the generation id."""

    def make(question: str = "What is the first-line treatment of anaphylaxis?",
             answer: str = "Intramuscular adrenaline.", model_version: str | None = "base") -> int:  # fmt: skip
        prompt_id = store.add_prompt(question)
        return store.add_generation(
            prompt_id, answer, model_version=model_version, settings={"temperature": 0.7}
        )

    return make
