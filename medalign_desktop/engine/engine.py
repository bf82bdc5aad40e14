"""The model engine: one base model in memory, LoRA adapters on top, streaming generation.

No Qt here. Every method blocks and is thread-safe (one lock), so the GUI calls them from a worker
thread (``loop.run_in_executor``) and the CLI calls them directly. Adapters are peft named adapters on the
loaded base: loading, switching and disabling them never reloads the base.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medalign_desktop.engine.errors import AdapterError, EngineError, ModelFolderError
from medalign_desktop.engine.generation import (
    GenerationResult,
    SamplingSettings,
    TextStreamer,
    TokenCallback,
    build_messages,
    make_stop_criteria,
)
from medalign_desktop.engine.model_folder import ModelFolderInfo, check_adapter_folder, check_model_folder
from medalign_desktop.engine.offline import enforce_offline
from training.model_loading import LoadPlan

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LoadedModel:
    label: str
    folder: ModelFolderInfo
    plan: LoadPlan
    memory_bytes: int
    load_time_s: float

    def describe(self) -> str:
        quant = "4-bit NF4" if self.plan.quantization == "nf4" else self.plan.dtype
        return f"{self.label} on {self.plan.device.upper()}, {quant}, {self.memory_bytes / 2**20:,.0f} MiB"


@dataclass(frozen=True)
class LoadRequest:
    """What ``Engine.load`` was asked for, so the same model can be loaded again the same way."""

    model_dir: Path
    label: str | None
    device: str
    dtype: str
    quantization: str


@dataclass(frozen=True)
class ReleasedModel:
    """A model the engine let go of to make room (``Engine.release``), and how to bring it back."""

    request: LoadRequest
    label: str
    memory_bytes: int  # the model's footprint when it was released
    active_adapter: str | None
    active_adapter_dir: Path | None


def _empty_cuda_cache() -> None:
    """Give the CUDA caching allocator's free blocks back to the driver, so other processes (a training
    job) see them as free; a no-op without torch or CUDA."""
    import sys

    torch = sys.modules.get("torch")  # never import torch just for this
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def trim_heap() -> None:
    """Give freed heap memory back to the operating system. glibc keeps what a model's tensors used for
    later allocations when they were heap blocks (a bfloat16 folder loaded in float32 converts every tensor
    into one): measured with SmolLM2 so, releasing the model lowered the resident size by only 305 of its
    513 MiB, and after a reload and a second release it stood higher than with the model loaded (1,122 MiB)
    until malloc_trim brought it to 456. A training job is another process: it gets only what is given
    back. A no-op off glibc."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # another C library (musl): nothing to trim this way
        pass


def free_unreferenced_memory() -> None:
    """Collect reference cycles, then give freed memory back (CUDA blocks, the C heap). Call it on the main
    thread (see unload)."""
    import gc

    gc.collect()
    _empty_cuda_cache()
    trim_heap()


class Engine:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.model = None  # transformers model, or a peft PeftModel once an adapter is loaded
        self.tokenizer = None
        self.loaded: LoadedModel | None = None
        self.last_request: LoadRequest | None = None  # kept after unload(): release / restore use it
        self._active_adapter: str | None = None
        self._adapter_dirs: dict[str, Path] = {}  # adapter name -> the folder it was loaded from

    # ----------------------------------------------------------------- loading
    def load(
        self,
        model_dir: str | Path,
        *,
        label: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        quantization: str = "auto",
        progress: Progress | None = None,
    ) -> LoadedModel:
        """Load a base model folder, replacing any loaded model. Raises EngineError with a clear message."""
        folder = check_model_folder(model_dir)
        enforce_offline()
        from training.model_check import ModelCheckError
        from training.model_loading import ModelError, load_base_model, load_tokenizer, plan_load

        try:
            plan = plan_load(device, dtype, quantization, for_training=False)  # model_loading's rules
        except ModelError as exc:
            raise EngineError(str(exc)) from exc
        if progress:
            progress(f"Loading {folder.path.name}: {plan.reason}")
        started = time.perf_counter()
        try:
            tokenizer = load_tokenizer(folder.path)
            model = load_base_model(folder.path, plan)  # never random weights (from_pretrained_checked)
        except ModelError as exc:
            error = ModelFolderError if isinstance(exc.__cause__, ModelCheckError) else EngineError
            raise error(str(exc)) from exc
        except Exception as exc:  # transformers raises OSError, ValueError, RuntimeError... for bad folders
            raise EngineError(f"{folder.path}: the model could not be loaded ({exc}).") from exc
        model.eval()
        with self._lock:
            self.unload()
            self.model, self.tokenizer = model, tokenizer
            self.last_request = LoadRequest(folder.path, label, device, dtype, quantization)
            self.loaded = LoadedModel(
                label or folder.path.name,
                folder,
                plan,
                model.get_memory_footprint(),
                time.perf_counter() - started,
            )
        if progress:
            progress(f"Loaded {self.loaded.describe()} in {self.loaded.load_time_s:.1f} s")
        return self.loaded

    def unload(self) -> None:
        """Drop the model and really free its memory (GPU memory too)."""
        with self._lock:
            self.model = self.tokenizer = self.loaded = None
            self._active_adapter = None
            self._adapter_dirs = {}
            # A full collection on a worker thread may finalise a GUI's Qt objects off their thread (it hung
            # a test: a window's garbage collected in the engine thread). Tensors are freed by reference
            # counting when the model is dropped; the cycle collector runs here only on the main thread.
            if threading.current_thread() is threading.main_thread():
                free_unreferenced_memory()
            else:
                _empty_cuda_cache()
                trim_heap()  # thread-safe; the tensors are already freed by reference counting

    def release(self) -> ReleasedModel | None:
        """Unload the model to make room for something else (a training job), and say how to bring it
        back with ``restore``: the same folder and load settings, and the adapter that was answering.
        None when no model was loaded."""
        with self._lock:
            loaded, request = self.loaded, self.last_request
            if loaded is None or request is None:
                return None
            active = self._active_adapter
            released = ReleasedModel(
                request, loaded.label, loaded.memory_bytes, active, self._adapter_dirs.get(active or "")
            )
            self.unload()
        return released

    def restore(self, released: ReleasedModel, progress: Progress | None = None) -> LoadedModel:
        """Load a released model again with its settings and put its active adapter back on. Only that
        adapter: the others load again on first use, as they did the first time."""
        request = released.request
        with self._lock:
            loaded = self.load(
                request.model_dir, label=request.label, device=request.device, dtype=request.dtype,
                quantization=request.quantization, progress=progress,
            )  # fmt: skip
            if released.active_adapter and released.active_adapter_dir:
                self.load_adapter(released.active_adapter_dir, released.active_adapter)
        return loaded

    def _require_model(self):
        if self.model is None:
            raise EngineError("No model is loaded yet.")
        return self.model

    # ----------------------------------------------------------------- adapters
    @property
    def adapters(self) -> list[str]:
        model = self.model
        return sorted(getattr(model, "peft_config", {}) or {}) if model is not None else []

    @property
    def active_adapter(self) -> str | None:
        return self._active_adapter

    def load_adapter(self, path: str | Path, name: str | None = None, *, activate: bool = True) -> str:
        """Load a LoRA adapter folder onto the loaded base under ``name`` (default: the folder name)."""
        folder = check_adapter_folder(path)
        name = name or folder.name
        with self._lock:
            model = self._require_model()
            if name in self.adapters:
                raise AdapterError(f"An adapter named '{name}' is already loaded.")
            try:
                from training.model_loading import attach_adapter

                self.model = attach_adapter(model, folder, name).eval()
            except Exception as exc:  # shape mismatch, wrong base, unreadable config
                raise AdapterError(f"{folder}: the adapter does not fit the loaded model ({exc}).") from exc
            self._adapter_dirs[name] = folder
            if activate:
                self.set_adapter(name)
        return name

    def set_adapter(self, name: str | None) -> None:
        """Activate a loaded adapter, or None to answer with the base model alone."""
        with self._lock:
            if name is not None:
                if name not in self.adapters:
                    raise AdapterError(
                        f"No adapter named '{name}' is loaded (loaded: {', '.join(self.adapters) or 'none'})."
                    )
                self.model.set_adapter(name)
            self._active_adapter = name

    def disable_adapter(self) -> None:
        self.set_adapter(None)

    def remove_adapter(self, name: str) -> None:
        with self._lock:
            if name not in self.adapters:
                raise AdapterError(f"No adapter named '{name}' is loaded.")
            if self._active_adapter == name:
                self._active_adapter = None
            self._adapter_dirs.pop(name, None)
            if len(self.adapters) == 1:
                self.model = self.model.unload()  # back to the plain base model, weights untouched
            else:
                self.model.delete_adapter(name)
                if self._active_adapter:
                    self.model.set_adapter(self._active_adapter)

    # ----------------------------------------------------------------- generation
    def encode(self, question: str, system_prompt: str):
        """Chat-template the question; returns a dict of (1, prompt_len) tensors on the model's device."""
        tokenizer = self.tokenizer
        if tokenizer.chat_template:
            enc = tokenizer.apply_chat_template(
                build_messages(question, system_prompt),
                add_generation_prompt=True,
                return_dict=True,
                return_tensors="pt",
            )
        else:
            enc = tokenizer(question, return_tensors="pt")
        return {k: v.to(self.model.device) for k, v in enc.items()}

    def generate(
        self,
        question: str,
        settings: SamplingSettings | None = None,
        *,
        on_text: TokenCallback | None = None,
        stop: threading.Event | None = None,
    ) -> GenerationResult:
        """Answer one question, streaming text pieces to ``on_text``; blocks until done or stopped."""
        settings = (settings or SamplingSettings()).validated()
        if not question.strip():
            raise EngineError("The question is empty.")
        import contextlib

        import torch

        with self._lock:
            model = self._require_model()
            started = time.perf_counter()
            enc = self.encode(question, settings.system_prompt)
            streamer = TextStreamer(self.tokenizer, on_text)
            sampling = settings.temperature > 0
            gen_kwargs = dict(
                max_new_tokens=settings.max_new_tokens,
                do_sample=sampling,
                streamer=streamer,
                stopping_criteria=make_stop_criteria(stop),
                pad_token_id=self.tokenizer.pad_token_id,
            )
            if sampling:
                gen_kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
            else:
                gen_kwargs.update(temperature=None, top_p=None, top_k=None)
            if settings.seed is not None:
                torch.manual_seed(settings.seed)
            adapters_off = (
                model.disable_adapter()
                if self._active_adapter is None and self.adapters
                else contextlib.nullcontext()
            )
            with torch.inference_mode(), adapters_off:
                model.generate(**enc, **gen_kwargs)
            streamer.end()
            total = time.perf_counter() - started
        n = streamer.n_tokens
        if stop is not None and stop.is_set():
            reason = "cancelled"
        elif n >= settings.max_new_tokens:
            reason = "length"
        else:
            reason = "stop"
        ttft = streamer.first_token_at - started if streamer.first_token_at else None
        return GenerationResult(
            text=streamer.text,
            n_tokens=n,
            time_to_first_token_s=ttft,
            total_time_s=total,
            tokens_per_s=n / total if total > 0 else 0.0,
            finish_reason=reason,
            settings=settings,
            model_label=self.loaded.label if self.loaded else "",
            adapter=self._active_adapter,
        )
