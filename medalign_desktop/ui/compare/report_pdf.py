"""The comparison report as a PDF (A4 landscape), drawn by Qt from the same HTML as the HTML report.

Qt's rich-text engine (QTextDocument) lays out the report's tables and text but does not draw inline
SVG, so each ``<svg>`` plot is rendered to an image first (QtSvg) and put in its place. No browser engine
is involved: the PDF is what QTextDocument prints to QPdfWriter.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from PySide6.QtCore import QByteArray, QMarginsF, QRectF, QSizeF, Qt, QUrl
from PySide6.QtGui import QImage, QPageLayout, QPageSize, QPainter, QPdfWriter, QTextDocument
from PySide6.QtSvg import QSvgRenderer

from medalign_desktop.store import tempfiles

SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL | re.IGNORECASE)
SVG_NAMESPACE = 'xmlns="http://www.w3.org/2000/svg"'
# Qt lays tables out at the font size asked for and breaks a word that does not fit its cell inside the
# word ("Ve rsi on", "10. 0 %"): the widest table (13 columns of metrics) needs A4 landscape at 8 pt.
PRINT_CSS = "<style>th, td { font-size: 8pt; white-space: nowrap; } h1 { font-size: 16pt; }</style>"
# ...and it does so in a header too, so a header gets one word a line (``header_words_on_lines``).
HEADER = re.compile(r"(<th\b[^>]*>)([^<]*)(</th>)", re.IGNORECASE)
PLOT_SCALE = 2  # plots are rendered at twice their size, so they stay sharp in print
PDF_DPI = 300
MARGIN_MM = 15
SCREEN_DPI = 96  # QTextDocument's unit on screen: an A4 page laid out at this resolution matches the PDF
A4_MM = QSizeF(297, 210)  # landscape: the metrics table's 13 columns fit whole
# The text area's width in QTextDocument's units (1/96 inch, also when printing): no plot is wider.
TEXT_WIDTH_PX = int((A4_MM.width() - 2 * MARGIN_MM) / 25.4 * SCREEN_DPI)


def _render_svg(svg: str) -> QImage | None:
    if "xmlns=" not in svg[:200]:
        svg = svg.replace("<svg", f"<svg {SVG_NAMESPACE}", 1)
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    size = renderer.defaultSize()
    if not renderer.isValid() or size.isEmpty():
        return None
    image = QImage(size.width() * PLOT_SCALE, size.height() * PLOT_SCALE, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.white)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    return image


def printable_html(html: str) -> tuple[str, dict[str, QImage]]:
    """The HTML with each inline SVG replaced by an <img> of it, and those images by name."""
    images: dict[str, QImage] = {}

    def replace(match: re.Match) -> str:
        image = _render_svg(match.group(0))
        if image is None:
            return ""  # a plot Qt cannot draw is left out rather than shown broken
        name = f"plot-{len(images) + 1}.png"
        images[name] = image
        width, height = image.width() // PLOT_SCALE, image.height() // PLOT_SCALE
        if width > TEXT_WIDTH_PX:  # scaled to the text width, so the last version's label stays on the page
            width, height = TEXT_WIDTH_PX, round(height * TEXT_WIDTH_PX / width)
        return f'<img src="{name}" width="{width}" height="{height}">'

    text = header_words_on_lines(SVG.sub(replace, html))
    head_end = text.lower().find("</head>")
    text = text[:head_end] + PRINT_CSS + text[head_end:] if head_end >= 0 else PRINT_CSS + text
    return text, images


def header_words_on_lines(html: str) -> str:
    """Each table header's words on lines of their own: a column is then as wide as its longest word or
    figure, and Qt never has to break a word in the middle to fit the page."""
    return HEADER.sub(lambda m: m.group(1) + "<br>".join(m.group(2).split()) + m.group(3), html)


def report_document(html: str) -> QTextDocument:
    text, images = printable_html(html)
    document = QTextDocument()
    for name, image in images.items():
        document.addResource(QTextDocument.ResourceType.ImageResource, QUrl(name), image)
    document.setHtml(text)
    return document


def write_pdf(html: str, path: str | Path) -> Path:
    """Print the report to an A4 PDF at ``path``, atomically (a temporary file renamed), readable by the
    owner only, as the HTML report is written."""
    path = Path(path)
    temporary = tempfiles.temp_path(path)  # registered: removed at the next start should we be killed
    tempfiles.clean_folder(path.parent, (path.name,))
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    try:
        writer = QPdfWriter(str(temporary))
        writer.setResolution(PDF_DPI)
        writer.setTitle("MedAlign Desktop: comparison of model versions")
        writer.setCreator("MedAlign Desktop")
        writer.setPageLayout(
            QPageLayout(
                QPageSize(QPageSize.PageSizeId.A4),
                QPageLayout.Orientation.Landscape,
                QMarginsF(MARGIN_MM, MARGIN_MM, MARGIN_MM, MARGIN_MM),
                QPageLayout.Unit.Millimeter,
            )
        )
        report_document(html).print_(writer)
        del writer  # the file is complete once the writer is gone
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def first_page_image(html: str, width: int = 1240) -> QImage:
    """The report's first A4 (landscape) page as an image ``width`` pixels wide (for the README screenshot): laid out
    on an A4 page at screen resolution, with the PDF's margins, which gives the PDF's line breaks."""
    document = report_document(html)
    page = QSizeF(A4_MM.width() / 25.4 * SCREEN_DPI, A4_MM.height() / 25.4 * SCREEN_DPI)
    document.setDocumentMargin(MARGIN_MM / 25.4 * SCREEN_DPI)
    document.setPageSize(page)
    scale = width / page.width()
    image = QImage(width, round(page.height() * scale), QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.white)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    painter.scale(scale, scale)
    document.drawContents(painter, QRectF(0, 0, page.width(), page.height()))
    painter.end()
    return image
