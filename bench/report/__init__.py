"""The report: summary table, self-contained HTML page, plots, environment section.

``summary`` computes every number (stats + overhead vs native) and the text exports; ``html``
renders the page from it with ``plots`` (SVG data URIs) and ``env`` (what served the run);
``format`` turns values into readable strings. Nothing here imports a backend or the runner.
"""

from __future__ import annotations

from bench.report.env import declared_directions
from bench.report.html import headline, render_html
from bench.report.summary import export_summary, load_runs, summary_table

__all__ = [
    "declared_directions",
    "export_summary",
    "headline",
    "load_runs",
    "render_html",
    "summary_table",
]
