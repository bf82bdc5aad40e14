"""Which text encoding a question file uses: UTF-8 (with or without BOM), UTF-16 with BOM, or refused.

UTF-8 and BOM-marked UTF-16 / UTF-32 are unambiguous and are decoded. Anything else (Latin-1, cp1252,
UTF-16 without BOM ...) is refused with ONE message naming the file and the encoding it most likely uses
(detected with ``charset-normalizer``), rather than one "not valid UTF-8" per line: a guessed legacy
encoding could turn clinical text into something subtly different, so the user converts it knowingly.
A UTF-8 file with only a few damaged bytes is still read, each damaged line reported on its own.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from medalign_desktop.store.errors import StoreImportError

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CHUNK = 1 << 20
_SAMPLE = 256 * 1024
# At most this many damaged lines (and this share of the lines): a UTF-8 file with a few bad lines,
# each reported on its own; more than that: a file in another encoding, refused with one message.
_FEW_BAD_LINES = 3
_FEW_BAD_SHARE = 0.10

_NAMES = {
    "cp1252": "Windows-1252 (Western European)",
    "latin_1": "Latin-1 (ISO-8859-1)",
    "iso8859_15": "Latin-9 (ISO-8859-15)",
    "utf_16": "UTF-16 without a byte-order mark",
    "utf_16_le": "UTF-16 (little-endian) without a byte-order mark",
    "utf_16_be": "UTF-16 (big-endian) without a byte-order mark",
    "mac_roman": "Mac Roman",
    "cp1250": "Windows-1250 (Central European)",
}


def _bom_encoding(head: bytes) -> str | None:
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    return None


def _utf8_damage(path: Path) -> tuple[int, int, int | None]:
    """(lines, lines with invalid UTF-8, byte offset of the first problem) for the whole file."""
    lines = bad = 0
    first: int | None = None
    with path.open("rb") as handle:
        for offset, raw in _lines_with_offsets(handle):
            lines += 1
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad += 1
                first = offset + exc.start if first is None else first
    return lines, bad, first


def _lines_with_offsets(handle):  # type: ignore[no-untyped-def]
    offset = 0
    for raw in handle:
        yield offset, raw
        offset += len(raw)


def _describe(sample: bytes) -> str:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - charset-normalizer is a dependency
        return "an unknown encoding"
    best = from_bytes(sample).best()
    if best is None:
        return "an unknown encoding (it may be a binary file)"
    return _NAMES.get(best.encoding, best.encoding)


def detect_encoding(path: Path) -> str:
    """The codec to read ``path`` with ('utf-8', 'utf-8-sig', 'utf-16', 'utf-32'); refuse the others.

    Raises StoreImportError naming the file and the detected encoding.
    """
    with path.open("rb") as handle:
        head = handle.read(_SAMPLE)
    bom = _bom_encoding(head)
    if bom is not None:
        return bom
    if b"\x00" in head[:4096] and head[:4096].count(b"\x00") > len(head[:4096]) // 8:
        raise _refuse(path, _describe(head))
    lines, bad, first = _utf8_damage(path)
    if bad == 0 or (bad <= _FEW_BAD_LINES and bad <= lines * _FEW_BAD_SHARE):
        return "utf-8"
    with path.open("rb") as handle:
        handle.seek(max(0, (first or 0) - _SAMPLE // 2))
        sample = handle.read(_SAMPLE)
    raise _refuse(path, _describe(sample))


def _refuse(path: Path, encoding: str) -> StoreImportError:
    return StoreImportError(
        f"Cannot import {path}: the file is not UTF-8; it looks like {encoding}. Nothing was imported. "
        "Save it as UTF-8 (or UTF-16 with a byte-order mark) and import it again."
    )
