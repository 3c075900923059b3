"""asdstudy: a reproducible study of anomalous sound detection (ASD).

The package behind the book: data (a synthetic factory and readers for the DCASE and MIMII
datasets), features, detectors, metrics and result rows. Every notebook of the book calls it;
every number in the book is computed by it.
"""

__version__ = "0.1.0"


class ASDStudyError(Exception):
    """Base class of the study's own errors: the message says what went wrong and what to do."""


def _pin_numerics_before_the_libraries_load() -> None:
    """``ASDSTUDY_NUMERICS=portable``: set the library pins now, before NumPy or torch load in a
    process that imports asdstudy first (see :mod:`asdstudy.numerics`)."""
    import os

    if os.environ.get("ASDSTUDY_NUMERICS", "").strip().lower() == "portable":
        from .numerics import PORTABLE_ENV

        os.environ.update(PORTABLE_ENV)


_pin_numerics_before_the_libraries_load()
