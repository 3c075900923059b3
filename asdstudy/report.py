"""Helpers for the chapter notebooks: glue numbers into the book's text."""

from __future__ import annotations

import numpy as np


def plain(value):
    """numpy scalars to Python ones (numpy 2 reprs like ``np.float64(0.5)`` break myst-nb's
    ``{glue:text}`key:.3f``` formatting)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def glue(name: str, value, display: bool = False):
    """``myst_nb.glue`` for a value that the text references with ``{glue:text}``."""
    from myst_nb import glue as _glue

    return _glue(name, plain(value), display=display)


def glue_all(values: dict) -> None:
    """Glue every (name, value) of an experiment result's ``glue()`` dict, without display."""
    for name, value in values.items():
        glue(name, value, display=False)


def params_table(params) -> "pd.DataFrame":
    """The run's parameters as a one-column table (shown once per chapter)."""
    import pandas as pd

    d = params.as_dict() if hasattr(params, "as_dict") else dict(params)
    return pd.DataFrame({"value": {k: repr(v) if isinstance(v, str) else str(v) for k, v in d.items()}}).rename_axis(
        "parameter")


def params_line(params) -> str:
    """The run's parameters in one Markdown line (shown once per chapter, above its results), and
    what re-running it elsewhere gives (:func:`asdstudy.numerics.reproducibility_text`)."""
    from .numerics import reproducibility_text

    d = params.as_dict() if hasattr(params, "as_dict") else dict(params)
    return ("**Parameters of this run:** " + ", ".join(f"`{k} = {v!r}`" for k, v in d.items())
            + "\n\n" + reproducibility_text())


def setup_figures(dpi: int = 100) -> None:
    """Figure defaults of the book: readable at the book's 1400 px width."""
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": dpi, "font.size": 10, "axes.titlesize": 10})
