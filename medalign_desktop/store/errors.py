"""Exceptions raised by the store.

Every message names what it is about (the database file, the field, or the imported file and line) so a
clinician or a support engineer can act on it without a traceback.
"""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot do what was asked; the message names the database file."""


class StoreValidationError(StoreError, ValueError):
    """An input was refused before anything was written.

    ``field`` names the offending argument (``"verdict"``, ``"edited_text"``, ``"safety_flags"`` ...) so a
    form can put the message next to the right widget.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class StoreImportError(StoreError, ImportError):
    """A question file cannot be imported at all (missing, unknown format, unreadable); names the file.

    Problems with single records are not raised: they are listed in the ``ImportReport``.
    """
