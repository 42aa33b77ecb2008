"""Rendering a matplotlib Figure to PNG, for every figure leafdoc draws: dataset stats (data/stats.py), the
evaluation report (evaluate/report.py), an experiment's learning curves (experiments/report.py) and the API's
stats images. In the base layer so each of them imports it downward, none from another's module.

Figures are built with `matplotlib.figure.Figure()`, never pyplot: no global backend or figure registry."""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """A Figure as PNG bytes, rendered with Agg whatever backend the caller's process chose."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig)
    # bbox tight: long class names grow past the axes; never cut them off.
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()
