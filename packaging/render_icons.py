"""Render resources/icons/medalign.svg to the PNG sizes desktops ask for, and a Windows .ico.

    python packaging/render_icons.py        (run after editing the SVG; the outputs are committed)

Qt's own SVG renderer draws them, so no image tool beyond the app's dependencies is needed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"
SOURCE = ICONS / "medalign.svg"
SIZES = (16, 32, 48, 64, 128, 256)


def render(renderer, size: int):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter

    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return image


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - QImage painting needs one
    renderer = QSvgRenderer(str(SOURCE))
    if not renderer.isValid():
        print(f"render_icons: {SOURCE} is not a valid SVG", file=sys.stderr)
        return 1
    for size in SIZES:
        target = ICONS / f"medalign-{size}.png"
        if not render(renderer, size).save(str(target)):
            print(f"render_icons: could not write {target}", file=sys.stderr)
            return 1
        print(target)
    # The .ico holds one image here (256 px; Windows scales it down); Qt writes ICO through its qico plugin.
    ico = ICONS / "medalign.ico"
    if not render(renderer, 256).save(str(ico), "ICO"):
        print(f"render_icons: could not write {ico} (Qt's ICO image plugin missing?)", file=sys.stderr)
        return 1
    print(ico)
    return 0


if __name__ == "__main__":
    sys.exit(main())
