"""Showing user and imported content as plain text, never as rich text.

QLabel guesses the format of its text (Qt.AutoText) and tooltips are always guessed: an imported answer
holding ``<h1>`` or ``<span style="color:white">`` would render as a heading or hidden text. Labels that
show content are switched to plain text; tooltips built from content are escaped and wrapped, so Qt
renders the literal characters (angle brackets included).
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel


def plain(*labels: QLabel) -> QLabel:
    """Show these labels' text literally (Qt.PlainText); returns the first, for chaining."""
    for label in labels:
        label.setTextFormat(Qt.TextFormat.PlainText)
    return labels[0]


def plain_label(text: str = "", object_name: str | None = None) -> QLabel:
    """A QLabel that shows ``text`` literally."""
    label = plain(QLabel())
    if object_name:
        label.setObjectName(object_name)
    label.setText(text)
    return label


def tip(text: str | None) -> str | None:
    """A tooltip that shows ``text`` literally: escaped and wrapped as rich text (Qt would otherwise guess,
    and render any HTML in it). Line breaks are kept. None and "" pass through."""
    if not text:
        return text
    body = html.escape(text, quote=False).replace("\n", "<br>")
    return f'<p style="white-space:pre-wrap">{body}</p>'
