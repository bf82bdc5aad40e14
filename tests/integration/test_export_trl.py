"""Exports are usable as they are: `datasets` loads each format and TRL trains one step on it; and an export
imported into a fresh store gives back the same pairs (the round trip).

One step on the tiny random Llama (2 layers, hidden 64) with the SmolLM2 tokenizer, on CPU, fp32, LoRA.
"""

from __future__ import annotations

import pytest

from medalign_desktop.store import Store
from medalign_desktop.store.exports.export import export_pairs
from medalign_desktop.store.imports.preferences import import_preferences
from medalign_desktop.store.rows import PairFilter

DEST_NAMES = {"jsonl": "pairs.jsonl", "parquet": "pairs.parquet", "datasets": "pairs_ds"}


def seed_every_source(store: Store) -> None:
    """Pairs of every derived source: edits, a comparison (with an edited winner), a reject + an accept."""
    for i in range(3):
        pid = store.add_prompt(f"Question {i}: what is the first-line treatment of anaphylaxis?")
        gen = store.add_generation(pid, f"Antihistamines first ({i}).", model_version="base", settings={})
        store.record_verdict(gen, "edit", annotator="alice", edited_text=f"IM adrenaline 0.5 mg ({i}).")
    pid = store.add_prompt("How is mild croup treated?")
    first = store.add_generation(pid, "A single dose of oral dexamethasone.", model_version="v1", settings={})
    second = store.add_generation(pid, "Antibiotics for a week.", model_version="v2", settings={})
    store.record_comparison(first, second, "first", annotator="bob", swapped=False, mode="versions",
                            edited_text="Oral dexamethasone 0.15 mg/kg, once.")  # fmt: skip
    pid = store.add_prompt("What is a normal adult resting heart rate?")
    bad = store.add_generation(pid, "200 beats per minute.", model_version="base", settings={})
    good = store.add_generation(pid, "60 to 100 beats per minute.", model_version="base", settings={})
    store.record_verdict(bad, "reject", annotator="carol", reject_reason="factually_wrong")
    store.record_verdict(good, "accept", annotator="carol")


ALL_SOURCES = PairFilter(sources=("edit", "comparison", "reject", "imported"))


def pair_set(store: Store, filters: PairFilter = ALL_SOURCES):
    return {(p.prompt, p.chosen, p.rejected) for p in store.preference_pairs(filters)}


@pytest.fixture
def exported(tmp_path):
    """The seeded store's pairs in each of the three formats: {fmt: path}."""
    with Store.open(tmp_path / "source.sqlite") as store:
        seed_every_source(store)
        sources = {p.source for p in store.preference_pairs()}
        assert sources == {"edit", "comparison", "reject"}
        return {fmt: export_pairs(store, tmp_path / name, fmt=fmt).path for fmt, name in DEST_NAMES.items()}


def load(path, fmt):
    import datasets

    if fmt == "datasets":
        return datasets.load_from_disk(str(path))
    return datasets.load_dataset("json" if fmt == "jsonl" else "parquet", data_files=str(path), split="train")


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "datasets"])
def test_round_trip_export_then_import(tmp_path, exported, fmt):
    with Store.open(tmp_path / "source.sqlite") as source:
        expected = pair_set(source)
    with Store.open(tmp_path / f"fresh-{fmt}.sqlite") as fresh:
        report = import_preferences(fresh, exported[fmt])
        assert report.imported == len(expected) == 6 and not report.errors
        assert pair_set(fresh, PairFilter(sources=("imported",))) == expected
        # exported again from the fresh store, the pairs are still the same
        again = export_pairs(fresh, tmp_path / f"again-{fmt}.jsonl")
        assert again.counts_by_source["imported"] == 6


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "datasets"])
def test_dpo_trainer_takes_a_step_on_each_format(tiny_model_dir, tmp_path, exported, fmt):
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    dataset = load(exported[fmt], fmt)
    assert len(dataset) == 6 and "prompt" not in dataset.column_names
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    args = DPOConfig(
        output_dir=str(tmp_path / "dpo"), use_cpu=True, bf16=False, max_length=64, max_steps=1,
        per_device_train_batch_size=2, report_to=[], save_strategy="no", logging_steps=1,
        disable_tqdm=True, dataset_num_proc=None,
    )  # fmt: skip
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    trainer = DPOTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=lora
    )
    result = trainer.train()
    assert result.global_step == 1
    assert torch.isfinite(torch.tensor(result.training_loss))


def test_reward_trainer_takes_a_step_on_parquet(tiny_model_dir, tmp_path, exported):
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    dataset = load(exported["parquet"], "parquet")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir, num_labels=1, dtype=torch.float32
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    args = RewardConfig(
        output_dir=str(tmp_path / "reward"), use_cpu=True, bf16=False, max_length=64, max_steps=1,
        per_device_train_batch_size=2, report_to=[], save_strategy="no", logging_steps=1, disable_tqdm=True,
    )  # fmt: skip
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="SEQ_CLS")
    trainer = RewardTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=lora
    )
    result = trainer.train()
    assert result.global_step == 1
    assert torch.isfinite(torch.tensor(result.training_loss))
