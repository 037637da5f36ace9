"""NumPy's BLAS on one thread while a method computes.

The linear algebra between the passes is small (Eigen-CAM's 49 x 1280 Gram matrix, rollouts of
197 x 197 attention): BLAS's own thread pool buys nothing there, and on cores that ORT or other
processes keep busy it waits for threads that lost theirs (docs/design.md, "Latency"). ORT's
threads are not BLAS's and keep their setting.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from threadpoolctl import ThreadpoolController

#: BLAS's thread count is one setting for the whole process: explain calls that overlap (the
#: threads of a dataset run) share one limit, set by the first to enter and restored by the
#: last to leave.
_shared = threading.Lock()
_inside = {"calls": 0, "limit": None}


@cache
def controller() -> ThreadpoolController:
    """The BLAS libraries loaded in this process, found once (a scan of the loaded libraries)."""
    return ThreadpoolController()


@contextmanager
def single_threaded() -> Iterator[None]:
    """A context in which BLAS runs on one thread (a few microseconds to enter)."""
    with _shared:
        if _inside["calls"] == 0:
            _inside["limit"] = controller().limit(limits=1, user_api="blas")
        _inside["calls"] += 1
    try:
        yield
    finally:
        with _shared:
            _inside["calls"] -= 1
            if _inside["calls"] == 0:
                _inside["limit"].restore_original_limits()
                _inside["limit"] = None
