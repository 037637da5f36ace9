"""NumPy's BLAS on the calling thread while a method computes.

The linear algebra between the passes is small (Eigen-CAM's 49 x 1280 Gram matrix, rollouts of
197 x 197 attention): BLAS's own thread pool buys nothing there, and on cores that ORT or other
processes keep busy it waits for threads that lost theirs (docs/design.md, "Latency"). ORT's
threads are not BLAS's and keep their setting.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import cache

from threadpoolctl import ThreadpoolController


@cache
def controller() -> ThreadpoolController:
    """The BLAS libraries loaded in this process, found once (a scan of the loaded libraries)."""
    return ThreadpoolController()


def single_threaded() -> AbstractContextManager:
    """A context in which BLAS runs on one thread (a few microseconds to enter)."""
    return controller().limit(limits=1, user_api="blas")
