"""matplotlib for gradflow's figures (`gradflow train --plot`, `gradflow bench --plot`): pyplot
on the file-only Agg backend, or a PlotUnavailableError that names what to install.

matplotlib is an optional dependency (``pip install 'gradflow[plot]'``); nothing imports it
before a figure is asked for.
"""

from __future__ import annotations

from typing import Any

MISSING_MATPLOTLIB = (
    "--plot needs matplotlib: pip install 'gradflow[plot]' (or pip install matplotlib)"
)


class PlotUnavailableError(RuntimeError):
    """matplotlib is not installed."""


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (images written to files, no window), or a
    PlotUnavailableError that says what to install."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailableError(MISSING_MATPLOTLIB) from exc
    return plt


def check_available() -> None:
    """Raise PlotUnavailableError now, before a long run, when matplotlib is missing."""
    pyplot()


__all__ = ["MISSING_MATPLOTLIB", "PlotUnavailableError", "check_available", "pyplot"]
