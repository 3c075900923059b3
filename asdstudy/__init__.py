"""asdstudy: a reproducible study of anomalous sound detection (ASD).

The package behind the book: data (a synthetic factory and readers for the DCASE and MIMII
datasets), features, detectors, metrics and result rows. Every notebook of the book calls it;
every number in the book is computed by it.
"""

__version__ = "0.1.0"


class ASDStudyError(Exception):
    """Base class of the study's own errors: the message says what went wrong and what to do."""
