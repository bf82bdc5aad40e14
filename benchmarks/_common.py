"""What the benchmarks share: a quiet offline environment, the model choice, the sample text.

Each benchmark is a script (``python benchmarks/NAME.py``); this module sits beside them on ``sys.path``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("MEDALIGN_TEST_CACHE", Path.home() / ".cache" / "medalign-desktop-tests"))

# Words of a clinical note: the store and export benchmarks build their text from them.
MEDICAL_WORDS = (
    "patient presents with fever cough dyspnoea chest pain tachycardia hypotension sepsis antibiotics "
    "fluids lactate culture oxygen saturation radiograph consolidation pneumonia amoxicillin dose renal "
    "function creatinine potassium insulin glucose ketoacidosis aspirin clopidogrel troponin ecg stemi "
    "heparin anticoagulation warfarin bleeding haemoglobin transfusion paracetamol ibuprofen headache "
    "migraine meningitis lumbar puncture steroids asthma salbutamol inhaler wheeze allergy adrenaline"
).split()


def quiet_offline(*, qt: bool = False) -> None:
    """No hub, no progress bars, no library chatter; the repository importable. Call before heavy imports."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if qt:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="smollm2", help="smollm2, tiny or a model folder")


def choose_model(option: str, scratch: Path) -> Path:
    """The model folder ``--model`` names: the demo SmolLM2, a random tiny Llama in ``scratch``, or a path."""
    if option == "tiny":
        return tiny_dir(scratch)
    if option == "smollm2":
        return smollm2_dir()
    return Path(option)


def smollm2_dir() -> Path:
    """The demo model converted from the packaged GGUF once, cached where the tests cache it."""
    from medalign_desktop.engine.gguf_import import (
        DEMO_MODEL_NAME,
        PROVENANCE_FILE,
        convert_gguf,
        locate_demo_gguf,
    )

    out = CACHE / DEMO_MODEL_NAME
    if not (out / PROVENANCE_FILE).exists():
        convert_gguf(locate_demo_gguf(), out)
    return out


def tiny_dir(root: Path) -> Path:
    """A 2-layer Llama with random weights and SmolLM2's tokenizer: the shapes of the real thing, in seconds."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = root / "tiny-llama"
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, bos_token_id=1, eos_token_id=2, pad_token_id=2,
        tie_word_embeddings=True,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(out)
    source = smollm2_dir()
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
        if (source / name).exists():
            shutil.copy(source / name, out / name)
    return out
