"""Errors the engine raises. Each message is meant to be shown to a person as it is."""

from __future__ import annotations


class EngineError(Exception):
    """Something the engine cannot do; the message says what and, where it can, why."""


class ModelFolderError(EngineError):
    """A model folder that is missing, partial or corrupt. The message names the path and what is wrong."""


class AdapterError(EngineError):
    """A LoRA adapter folder that cannot be loaded onto the current base model."""
