"""What the benchmarks share: a quiet offline environment, the model choice and the scratch folder of the training
benchmarks (their parser, the machine line), the sample text.

Each benchmark is a script (``python benchmarks/NAME.py``); this module sits beside them on ``sys.path``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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


def training_parser(doc: str | None, default_model: str = "smollm2") -> argparse.ArgumentParser:
    """The parser of a benchmark that trains a model: its module docstring as the help, ``--model`` and
    ``--max-length`` (tokens of prompt + answer)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=default_model, help="smollm2, tiny or a model folder")
    parser.add_argument("--max-length", type=int, default=256)
    return parser


@contextmanager
def scratch_with_model(prefix: str, option: str) -> Iterator[tuple[Path, Path]]:
    """(a scratch folder, the model folder ``--model`` names, see choose_model), the scratch folder removed
    when the block ends."""
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield scratch, choose_model(option, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def print_machine(model: str) -> None:
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; model {model}")


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
