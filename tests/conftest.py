"""Shared fixtures: an isolated MedAlign home per session, the real demo model, and a tiny random Llama.

The converted SmolLM2 folder is cached between runs in MEDALIGN_TEST_CACHE (default
~/.cache/medalign-desktop-tests) so only the first run pays the ~30 s GGUF conversion.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TEST_CACHE = Path(os.environ.get("MEDALIGN_TEST_CACHE", Path.home() / ".cache" / "medalign-desktop-tests"))
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
)


@pytest.fixture(autouse=True, scope="session")
def isolated_home(tmp_path_factory):
    """Point every app folder (data, cache, settings) at a temporary home for the whole test session."""
    home = tmp_path_factory.mktemp("medalign-home")
    old = os.environ.get("MEDALIGN_HOME")
    os.environ["MEDALIGN_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("MEDALIGN_HOME", None)
    else:
        os.environ["MEDALIGN_HOME"] = old


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The real SmolLM2-135M-Instruct as a safetensors folder, converted once and cached between runs."""
    from medalign_desktop.engine.gguf_import import (
        DEMO_MODEL_NAME,
        PROVENANCE_FILE,
        convert_gguf,
        locate_demo_gguf,
    )

    out = TEST_CACHE / DEMO_MODEL_NAME
    if not (out / PROVENANCE_FILE).exists():
        convert_gguf(locate_demo_gguf(), out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(smollm2_dir, tmp_path_factory) -> Path:
    """A tiny random LlamaForCausalLM (2 layers, hidden 64) with the SmolLM2 tokenizer, saved as safetensors."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (smollm2_dir / name).exists():
            shutil.copy(smollm2_dir / name, out / name)
    return out


def make_lora_adapter(model_dir: Path, out: Path, seed: int) -> Path:
    """Save a LoRA adapter with random, non-zero B matrices, so it visibly changes the model's output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    )
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_adapters(tiny_model_dir, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny-adapters")
    return (
        make_lora_adapter(tiny_model_dir, root / "adapter-a", 1),
        make_lora_adapter(tiny_model_dir, root / "adapter-b", 2),
    )


@pytest.fixture(autouse=True)
def gui_thread_garbage_collection(request):
    """In tests that use Qt, collect garbage on the main thread only (see medalign_desktop/ui/core/gc_guard.py),
    and collect each test's Qt objects before the next test starts its worker threads."""
    if "qapp" not in request.fixturenames and "qtbot" not in request.fixturenames:
        yield
        return
    from medalign_desktop.ui.core.gc_guard import GuiThreadGarbageCollector

    collector = GuiThreadGarbageCollector()
    yield
    collector.stop()
    collector.deleteLater()


@pytest.fixture
def loop(qapp):
    """A qasync event loop on the test's QApplication, for code that awaits and uses Qt signals."""
    import asyncio

    import qasync

    loop = qasync.QEventLoop(qapp, already_running=False)
    asyncio.set_event_loop(loop)
    yield loop
    loop.close()
    asyncio.set_event_loop(None)


@pytest.fixture
def job_manager_for(loop, tmp_path):
    """Build JobManagers whose store calls run on one store thread, as the app's StoreService does."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from medalign_desktop.jobs.manager import JobManager

    executor = ThreadPoolExecutor(max_workers=1)
    managers = []

    def make(store, **kwargs):
        async def store_call(fn):
            return await asyncio.get_running_loop().run_in_executor(executor, fn, store)

        managers.append(JobManager(store_call, tmp_path / "jobs", **kwargs))
        return managers[-1]

    yield make
    for manager in managers:
        loop.run_until_complete(manager.shutdown(grace_ms=500))
    executor.shutdown()
