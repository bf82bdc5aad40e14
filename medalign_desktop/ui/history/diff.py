"""The difference between the model's answer and the clinician's edit, as coloured HTML.

Word-level (each word or run of punctuation carries the whitespace after it, so a changed phrase shows as one removal and one
addition rather than being cut at every shared space), because clinicians change words and phrases, and a
character diff of prose is unreadable. Removed text is ``<del>``, added text ``<ins>``; each also carries an
inline style, since Qt's rich-text engine colours spans reliably but not every tag.
"""

from __future__ import annotations

import difflib
import html
import re

DEL_STYLE = "background-color:#fde2e1; color:#8a1c1c; text-decoration:line-through;"
INS_STYLE = "background-color:#dcf2e0; color:#14532d; text-decoration:none;"
_TOKENS = re.compile(r"^\s+|\w+\s*|[^\w\s]+\s*")


def _escape(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def diff_html(original: str, edited: str) -> str:
    """HTML of ``edited`` against ``original``: unchanged text plain, removals struck red, additions green."""
    before, after = _TOKENS.findall(original), _TOKENS.findall(edited)
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    parts: list[str] = []
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            parts.append(_escape("".join(before[a1:a2])))
            continue
        if op in ("delete", "replace"):
            parts.append(f'<del><span style="{DEL_STYLE}">{_escape("".join(before[a1:a2]))}</span></del>')
        if op in ("insert", "replace"):
            parts.append(f'<ins><span style="{INS_STYLE}">{_escape("".join(after[b1:b2]))}</span></ins>')
    return "".join(parts)


def plain_html(text: str) -> str:
    return _escape(text)
