"""The comparison report of model versions: blind-review statistics (stats), plots and the document (document).

No Qt and no SQL here: the statistics are pure functions of votes, and the report reads the store through
its public methods only.
"""

from medalign_desktop.report.document import ReportData, ReportError, render_html, report_data, write_report
from medalign_desktop.report.stats import (
    FlagRate,
    WinRate,
    bradley_terry,
    flag_rates,
    overall_win_rates,
    wilson_interval,
    win_rates,
)

__all__ = [
    "FlagRate",
    "ReportData",
    "ReportError",
    "WinRate",
    "bradley_terry",
    "flag_rates",
    "overall_win_rates",
    "render_html",
    "report_data",
    "win_rates",
    "wilson_interval",
    "write_report",
]
