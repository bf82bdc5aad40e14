"""The auto-retrain counter's rule."""

from __future__ import annotations

import pytest

from medalign_desktop.jobs.retrain_policy import RetrainPolicy


def test_retrains_at_the_threshold_only_when_idle():
    policy = RetrainPolicy(threshold=20)
    assert not policy.should_retrain(19, job_active=False)
    assert policy.should_retrain(20, job_active=False)
    assert policy.should_retrain(35, job_active=False)
    assert not policy.should_retrain(35, job_active=True)


def test_disabled_never_retrains():
    assert not RetrainPolicy(threshold=1, enabled=False).should_retrain(100, job_active=False)


def test_threshold_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        RetrainPolicy(threshold=0)
