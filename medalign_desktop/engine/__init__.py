"""Model engine: model folders, GGUF import, loading (4-bit on CUDA), adapters, streaming generation.

No Qt widgets here; heavy libraries (torch, transformers, peft) are imported inside functions so that
importing the package is instant.
"""

from medalign_desktop.engine.engine import Engine, LoadedModel, LoadRequest, ReleasedModel
from medalign_desktop.engine.errors import AdapterError, EngineError, ModelFolderError
from medalign_desktop.engine.generation import DEFAULT_SYSTEM_PROMPT, GenerationResult, SamplingSettings
from medalign_desktop.engine.model_folder import ModelFolderInfo, check_adapter_folder, check_model_folder

__all__ = [
    "AdapterError",
    "DEFAULT_SYSTEM_PROMPT",
    "Engine",
    "EngineError",
    "GenerationResult",
    "LoadedModel",
    "LoadRequest",
    "ModelFolderError",
    "ModelFolderInfo",
    "ReleasedModel",
    "SamplingSettings",
    "check_adapter_folder",
    "check_model_folder",
]
