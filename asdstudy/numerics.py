"""Which vector instructions the numeric libraries use, and a mode that makes the numbers portable.

A floating-point sum depends on the order of its terms. Each numeric library picks the widest
vector unit it finds on the CPU, and with it an order: MKL (torch's matrix products), oneDNN
(torch's LSTM and GRU), torch's own loops, OpenBLAS and NumPy's SIMD loops (the log-mel
features). So the same seed gives bit-identical numbers on the same kind of CPU, and different
ones on another. On an AVX-512 machine a network's first training steps differ from an
AVX2 machine's in the last bits; over a few thousand steps the weights, and the AUC, move. It is
training noise of the same kind as another seed's, which the chapters' seed spreads measure.

The number of threads that share a sum matters too. ``asdstudy run`` and ``asdstudy reproduce``
give each chapter's kernel the chapter's ``jobs`` threads (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``) and its workers one each, whatever the machine's core count.

``ASDSTUDY_NUMERICS`` picks the mode:

- ``native`` (the default): every library uses the best code for this CPU. Same CPU, same numbers.
- ``portable``: every library is held to its AVX2 code path (MKL's conditional numerical
  reproducibility, oneDNN's and torch's instruction-set caps, OpenBLAS's Haswell kernels, NumPy
  without AVX-512). Any Intel CPU with AVX2 then gives the same numbers (MKL's guarantee covers
  Intel CPUs; on others MKL may choose its own branch). On an AVX-512 machine
  torch's hot loops run 18-55 % slower (``scripts/bench_numerics.py``: GAN step +18 %, LSTM
  step +30 %, LSTM scoring +55 % on one thread).

The variables must be in place before the libraries load. :func:`apply` puts them into this
process's environment, which the chapters' kernels and their workers inherit: ``asdstudy
reproduce`` and ``asdstudy run`` call it first. Importing ``asdstudy`` calls it too, which covers
a notebook run with papermill directly, as long as nothing imported NumPy or torch first.
:func:`describe` reports what the libraries actually use. It refuses to label a process
``portable`` when the pins were set too late to take effect.
"""

from __future__ import annotations

import os
import platform

from . import ASDStudyError

VARIABLE = "ASDSTUDY_NUMERICS"
MODES = ("native", "portable")

#: the pins of the portable mode, one per library that chooses its code by the CPU
PORTABLE_ENV = {
    "MKL_CBWR": "AVX2",  # MKL (torch's matrix products): conditional numerical reproducibility
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN (torch's LSTM, GRU and convolutions)
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's own vectorised loops
    "OPENBLAS_CORETYPE": "Haswell",  # OpenBLAS (NumPy's and SciPy's matrix products)
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # NumPy's loops without AVX-512
}


def mode(env=None) -> str:
    """The numerics mode that ``ASDSTUDY_NUMERICS`` asks for (empty or unset: ``native``)."""
    value = (os.environ if env is None else env).get(VARIABLE, "").strip().lower() or "native"
    if value not in MODES:
        raise ASDStudyError(f"{VARIABLE}={value!r} is not a numerics mode: use 'native' (fastest, same numbers "
                            "on the same kind of CPU) or 'portable' (same numbers on any Intel CPU with AVX2).")
    return value


def environment(which: str) -> dict:
    """The variables that mode ``which`` sets."""
    if which not in MODES:
        raise ASDStudyError(f"unknown numerics mode {which!r}; use one of {MODES}.")
    return dict(PORTABLE_ENV) if which == "portable" else {}


def apply(env=None) -> str:
    """Set the pins of the mode ``ASDSTUDY_NUMERICS`` asks for in ``env`` (default: this
    process's environment, which child processes inherit). Returns the mode."""
    env = os.environ if env is None else env
    which = mode(env)
    env.update(environment(which))
    return which


def _torch_isa() -> str:
    try:
        import torch

        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # no torch, or one without the query
        return "unknown"


def _torch_threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except Exception:
        return None


def _numpy_isa() -> str:
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as found
    except Exception:  # another NumPy layout
        return "unknown"
    return "AVX512" if found.get("X86_V4") or found.get("AVX512_SKX") else "AVX2" if found.get("AVX2") else "baseline"


def describe() -> dict:
    """What this process's libraries run on: the mode, torch's and NumPy's vector units, and
    whether every pin of the portable mode is in place (``pinned``).

    Raises:
        ASDStudyError: the mode is ``portable`` but torch or NumPy already run on AVX-512 code,
            that is, they were loaded before the pins were set.
    """
    which = mode()
    info = {"mode": which, "machine": platform.machine(), "torch": _torch_isa(), "numpy": _numpy_isa(),
            "threads": _torch_threads(),
            "pinned": all(os.environ.get(k) == v for k, v in PORTABLE_ENV.items())}
    if which == "portable" and (not info["pinned"] or "AVX512" in (info["torch"].upper(), info["numpy"])):
        raise ASDStudyError(
            f"{VARIABLE}=portable, but this process's libraries were loaded before the pins were set "
            f"(torch runs {info['torch']}, NumPy {info['numpy']}), so its numbers would not be portable. "
            "Start it through `asdstudy run` / `asdstudy reproduce`, import asdstudy before NumPy and "
            f"torch, or export {' '.join(f'{k}={v!r}' for k, v in PORTABLE_ENV.items())} before starting it.")
    return info


def label() -> str:
    """A short tag for result rows: ``AVX512 native`` or ``AVX2 portable``."""
    info = describe()
    isa = info["torch"] if info["torch"] != "unknown" else info["numpy"]
    return f"{isa} {info['mode']}"


def reproducibility_text(info: dict | None = None) -> str:
    """One sentence for the book: what a reader re-running a chapter elsewhere should expect."""
    info = describe() if info is None else info
    threads = f" on {info['threads']} thread{'' if info.get('threads') == 1 else 's'}" if info.get("threads") else ""
    if info["mode"] == "portable":
        return (f"These numbers were computed in portable numerics{threads} (every library held to its AVX2 code "
                "path): re-run with the same parameters (`jobs` sets the threads) and seed on any Intel CPU with "
                "AVX2, they come out identical.")
    return (f"These numbers were computed in native numerics{threads} (torch on {info['torch']}, NumPy on "
            f"{info['numpy']}): re-run with the same parameters (`jobs` sets the threads) and seed on the same kind "
            "of CPU, they come out identical. On another "
            "kind, the networks train to slightly different weights and their numbers differ; each chapter's seed "
            f"spread shows how far training noise of that kind moves them. Set {VARIABLE}=portable for identical "
            "numbers on any Intel CPU with AVX2.")
