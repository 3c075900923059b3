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
