"""The look: Fusion style, a calm light or dark palette, readable fonts, and resources/style/<theme>.qss.

The theme follows the system's colour scheme (``QStyleHints.colorScheme``, and its changes while the app
runs) unless the user chose one (``--theme light|dark|system``, saved in the settings). Widgets that draw
their own colours (the pyqtgraph plots) read :func:`plot_colours` and listen to ``ThemeManager.changed``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QDir, QObject, Qt, Signal
from PySide6.QtGui import QColor, QFont, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from medalign_desktop import paths

log = logging.getLogger(__name__)

STYLE_DIR = paths.RESOURCES_DIR / "style"
ICON_DIR = paths.RESOURCES_DIR / "icons"
THEMES = ("light", "dark")
PREFERENCES = ("system", *THEMES)
BASE_POINT_SIZE = 10  # the question and the answer are larger (12 pt), set in the style sheet

PALETTES = {
    "light": {
        "Window": "#f4f6f8", "WindowText": "#1f2933", "Base": "#ffffff", "AlternateBase": "#f8f9fb",
        "Text": "#1f2933", "Button": "#ffffff", "ButtonText": "#1f2933", "Highlight": "#d6e4f5",
        "HighlightedText": "#102a43", "ToolTipBase": "#ffffff", "ToolTipText": "#1f2933",
        "PlaceholderText": "#8a94a3", "Link": "#0b4a8b", "Disabled": "#a0a8b3",
    },
    "dark": {
        "Window": "#1a1e23", "WindowText": "#e3e7eb", "Base": "#232930", "AlternateBase": "#1f252c",
        "Text": "#e3e7eb", "Button": "#232930", "ButtonText": "#e3e7eb", "Highlight": "#2c4a70",
        "HighlightedText": "#e6f0fb", "ToolTipBase": "#2a3139", "ToolTipText": "#e3e7eb",
        "PlaceholderText": "#7d8894", "Link": "#8cc4ff", "Disabled": "#66717d",
    },
}  # fmt: skip


@dataclass(frozen=True)
class PlotColours:
    background: str
    foreground: str  # axes, ticks and labels
    title: str


PLOT_COLOURS = {
    "light": PlotColours(background="#ffffff", foreground="#4a5563", title="#333333"),
    "dark": PlotColours(background="#232930", foreground="#b4bec9", title="#e3e7eb"),
}

# Colours written into rich text (HTML has no palette roles), per theme.
HTML_COLOURS = {
    "light": {"heading": "#4a5260", "muted": "#6b7280", "warning": "#9a3412"},
    "dark": {"heading": "#b4bec9", "muted": "#98a4b1", "warning": "#f4a261"},
}


def make_palette(theme: str) -> QPalette:
    colours = PALETTES[theme]
    palette = QPalette()
    for name, colour in colours.items():
        if name != "Disabled":
            palette.setColor(getattr(QPalette.ColorRole, name), QColor(colour))
    for role in (QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText, QPalette.ColorRole.Text):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(colours["Disabled"]))
    return palette


def light_palette() -> QPalette:
    return make_palette("light")


def style_sheet_path(theme: str) -> Path:
    return STYLE_DIR / f"{theme}.qss"


def system_theme() -> str:
    """The system's colour scheme as a theme name; light when the platform does not say (offscreen)."""
    scheme = QGuiApplication.styleHints().colorScheme()
    return "dark" if scheme == Qt.ColorScheme.Dark else "light"


class ThemeManager(QObject):
    """Applies the chosen theme to the application and re-applies it when the system scheme changes."""

    changed = Signal(str)  # the theme now shown: "light" or "dark"

    def __init__(self, app: QApplication) -> None:
        super().__init__(app)
        self.app = app
        self.preference = "system"
        self.theme = "light"
        app.styleHints().colorSchemeChanged.connect(self._system_changed)

    def set_preference(self, preference: str) -> str:
        """ "system", "light" or "dark" (anything else: "system"); returns the theme now shown."""
        self.preference = preference if preference in PREFERENCES else "system"
        hints = self.app.styleHints()
        if self.preference == "system":
            hints.unsetColorScheme()  # back to the platform's own answer
            theme = system_theme()
        else:
            theme = self.preference
            # Native parts (title bars, file dialogs) follow too; this emits colorSchemeChanged, ignored
            # below because the preference is not "system".
            hints.setColorScheme(Qt.ColorScheme.Dark if theme == "dark" else Qt.ColorScheme.Light)
        self._apply(theme)
        return theme

    def _system_changed(self, _scheme: Qt.ColorScheme) -> None:
        if self.preference == "system":
            self._apply(system_theme())

    def _apply(self, theme: str) -> None:
        self.app.setPalette(make_palette(theme))
        sheet = style_sheet_path(theme)
        try:
            self.app.setStyleSheet(sheet.read_text(encoding="utf-8"))
        except OSError:  # a missing sheet leaves the plain Fusion look, which still works
            log.warning("Style sheet %s not found", sheet)
        changed, self.theme = theme != self.theme, theme
        if changed:
            self.changed.emit(theme)


_manager: ThemeManager | None = None


def theme_manager() -> ThemeManager | None:
    """The application's theme manager, once :func:`apply_style` has run."""
    return _manager


def current_theme() -> str:
    return _manager.theme if _manager is not None else "light"


def plot_colours(theme: str | None = None) -> PlotColours:
    return PLOT_COLOURS[theme or current_theme()]


def html_colour(name: str) -> str:
    """A rich-text colour ("heading", "muted" or "warning") readable on the current theme's cards."""
    return HTML_COLOURS[current_theme()][name]


def colour_plot(plot, title: str) -> None:
    """A pyqtgraph PlotItem's (or PlotWidget's) title and axes in the current theme's colours."""
    colours = plot_colours()
    plot.setTitle(title, size="9pt", color=colours.title)
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setPen(colours.foreground)
        axis.setTextPen(colours.foreground)


def app_icon() -> QIcon:
    """The application icon at every size found (SVG scales for high-DPI; PNGs for the platforms that
    want bitmaps); an empty icon until resources/icons holds one."""
    icon = QIcon()
    svg = ICON_DIR / "medalign.svg"
    if svg.exists():
        icon.addFile(str(svg))
    for png in sorted(ICON_DIR.glob("medalign*.png")):
        icon.addFile(str(png))
    return icon


def apply_style(app: QApplication, theme: str = "system") -> ThemeManager:
    """Fusion, the base font, the icon, and the theme ("system", "light" or "dark")."""
    global _manager
    # The style sheets name their icons "resources:style/...", so they work from any working directory.
    QDir.addSearchPath("resources", str(paths.RESOURCES_DIR))
    app.setStyle("Fusion")  # the same look on every platform, and it honours the palette fully
    font = QFont(app.font())
    font.setPointSize(BASE_POINT_SIZE)
    app.setFont(font)
    icon = app_icon()
    if not icon.isNull():
        app.setWindowIcon(icon)
    if _manager is None or _manager.app is not app:
        _manager = ThemeManager(app)
    _manager.set_preference(theme)
    return _manager
