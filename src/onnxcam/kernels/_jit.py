"""Numba compilation settings shared by every kernel.

Caching is decided once, at import: compiled kernels are cached on disk only where the cache
directory is writable (a read-only site-packages must never make `import onnxcam` fail).
Numba checks a cached kernel against its own file only: after editing a kernel that others
call from other files (normalize.py, resize.py, _intrinsics.py), clear kernels/__pycache__.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from pathlib import Path

import numba


def cache_dir_is_writable(directory: Path | None = None) -> bool:
    """Whether Numba can write its cache to `directory` (default: where Numba would put it)."""
    if os.environ.get("ONNXCAM_NUMBA_CACHE", "1") == "0":
        return False
    if directory is None:
        env = os.environ.get("NUMBA_CACHE_DIR")
        directory = Path(env) if env else Path(__file__).parent / "__pycache__"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory):
            pass
    except OSError:
        return False
    return True


CACHE = cache_dir_is_writable()

#: Decorator for kernels: no Python objects, GIL released so ORT and kernels overlap. The kernels
#: behind onnxcam.kernels' public functions carry a leading underscore (warm_kernels loads each
#: of those); the helpers that those kernels call (min_max, normalize_into, ...) carry none.
jit = partial(numba.njit, cache=CACHE, nogil=True)


#: Below this many elements of output a parallel kernel runs on the calling thread alone:
#: waking Numba's thread pool costs more than the work, and on busy cores it waits for threads
#: that lost theirs (docs/design.md, "Latency").
PARALLEL_MIN_WORK = 1 << 20


@contextmanager
def one_thread() -> Iterator[None]:
    """Numba's kernels on the calling thread alone while the context lasts."""
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def threads_for(work: int) -> AbstractContextManager:
    """Numba's thread count for a kernel call of `work` output elements: one below
    PARALLEL_MIN_WORK, else the current setting."""
    return nullcontext() if work >= PARALLEL_MIN_WORK else one_thread()
