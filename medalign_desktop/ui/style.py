"""The look: Fusion style, a calm light palette, readable fonts, and resources/style/light.qss."""

from __future__ import annotations

import logging

from PySide6.QtCore import QDir
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

from medalign_desktop import paths

log = logging.getLogger(__name__)

STYLE_SHEET = paths.RESOURCES_DIR / "style" / "light.qss"
BASE_POINT_SIZE = 10  # the question and the answer are larger (12 pt), set in the style sheet


def light_palette() -> QPalette:
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#f4f6f8",
        QPalette.ColorRole.WindowText: "#1f2933",
        QPalette.ColorRole.Base: "#ffffff",
        QPalette.ColorRole.AlternateBase: "#f8f9fb",
        QPalette.ColorRole.Text: "#1f2933",
        QPalette.ColorRole.Button: "#ffffff",
        QPalette.ColorRole.ButtonText: "#1f2933",
        QPalette.ColorRole.Highlight: "#d6e4f5",
        QPalette.ColorRole.HighlightedText: "#102a43",
        QPalette.ColorRole.ToolTipBase: "#ffffff",
        QPalette.ColorRole.ToolTipText: "#1f2933",
        QPalette.ColorRole.PlaceholderText: "#8a94a3",
    }
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#a0a8b3"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor("#a0a8b3"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#a0a8b3"))
    return palette


def apply_style(app: QApplication) -> None:
    # The style sheet names its icons "resources:style/...", so it works from any working directory.
    QDir.addSearchPath("resources", str(paths.RESOURCES_DIR))
    app.setStyle("Fusion")  # the same look on every platform, and it honours the palette fully
    app.setPalette(light_palette())
    font = QFont(app.font())
    font.setPointSize(BASE_POINT_SIZE)
    app.setFont(font)
    try:
        app.setStyleSheet(STYLE_SHEET.read_text(encoding="utf-8"))
    except OSError:  # a missing sheet leaves the plain Fusion look, which still works
        log.warning("Style sheet %s not found", STYLE_SHEET)
