"""The one table of job kinds on the app's side: what the app needs to run and show each kind.

    APP_KINDS[kind].write_snapshot(store, request, job_dir)  the kind's data/ files   (jobs/snapshot.py)
                   .config(request, provenance)              its config.json
                   .label, .short_label                      the words the UI shows   (ui/core/labels.py)
                   .panels                                   the Train page's plots   (ui/train/loss_plot.py)
                   .version_prefix, .answers, .resumable     the version it makes     (jobs/resume.py)
                   .store_results, .result_error             or the results it stores (jobs/manager.py)

One module per kind, or per family of kinds that share their snapshot (sft + hitl, dpo + reward). The
training side's table is training/kinds.py; the files between the two are training/job_folder.py's.
Adding a kind: its module here and one row below, its program and one row there
(tests/unit/jobs/test_kinds.py checks that the two tables name the same kinds).
"""

from __future__ import annotations

from medalign_desktop.jobs.job_types import JobKindSpec
from medalign_desktop.jobs.kinds.evaluate import EVALUATE
from medalign_desktop.jobs.kinds.ppo import PPO
from medalign_desktop.jobs.kinds.preference import DPO, REWARD
from medalign_desktop.jobs.kinds.score import SCORE
from medalign_desktop.jobs.kinds.sft import HITL, SFT

APP_KINDS: dict[str, JobKindSpec] = {
    spec.name: spec for spec in (SFT, HITL, DPO, REWARD, PPO, EVALUATE, SCORE)
}


def kinds_where(**flags: bool) -> tuple[str, ...]:
    """The kinds whose spec has every one of ``flags`` (``answers=True``, ``resumable=True``, ...)."""
    return tuple(
        name for name, spec in APP_KINDS.items() if all(getattr(spec, f) == v for f, v in flags.items())
    )
