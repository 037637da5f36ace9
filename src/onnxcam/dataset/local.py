"""The local engine: one warm Explainer in this process, explaining several groups at once.
Loader threads decode groups ahead; each group is explained on one of `workers` threads and
written by that thread after it has made room for the next group.

Several groups at once with fewer ORT threads each keep the cores busier than one group at a
time on all of them: a single-threaded ORT run has no barrier at which one thread waits for
another that lost its core to decoding, and one group's Python work between runs overlaps
another's ORT work (docs/design.md, "Dataset runs"). ORT sessions are safe to run from several
threads, and the Explainer keeps no state between calls.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

import numba

from onnxcam.dataset.inputs import Item
from onnxcam.dataset.manifest import Row
from onnxcam.dataset.worker import Job, Loaded, Worker

#: Groups decoded ahead of those being explained (memory: that many groups of inputs).
PREFETCH = 2


def available_cores() -> int:
    """CPUs this process may run on (its affinity, which containers narrow), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(provider: str) -> int:
    """Groups explained at once by the local engine: two on a CPU with two cores or more, else
    one (a GPU provider keeps one group at a time: two at once were not measured there)."""
    return 2 if provider == "cpu" and available_cores() >= 2 else 1


def engine_shape(job: Job, workers: int | None = None) -> tuple[int, int]:
    """Groups explained at once (default_workers unless given) and ORT threads for each
    (job.threads, else the cores shared out among the groups)."""
    count = workers or default_workers(job.provider)
    return count, job.threads or max(1, available_cores() // count)


def explain_local(job: Job, items: list[Item], workers: int | None = None) -> Iterator[list[Row]]:
    """Explain `items` in groups of job.chunk, as many groups at once and on as many ORT threads
    each as engine_shape says; yields each group's rows once they are written."""
    count, threads = engine_shape(job, workers)
    worker = Worker(replace(job, threads=threads))
    slots = threading.Semaphore(count)
    groups = [items[i : i + job.chunk] for i in range(0, len(items), job.chunk)]

    def explain_and_write(loading: list[Future]) -> list[Row]:
        entries = [future.result() for future in loading]
        errors = [entry for entry in entries if isinstance(entry, Row)]
        good = [entry for entry in entries if isinstance(entry, Loaded)]
        with slots:  # released before writing: the next group runs while this one is written
            outcomes = worker.explain(good)
        return worker.write([*errors, *outcomes])

    ahead = PREFETCH + count
    # One more thread than groups explained at once: one of them is writing at any time.
    load_pool = ThreadPoolExecutor(count, thread_name_prefix="onnxcam-load")
    explain_pool = ThreadPoolExecutor(
        count + 1,
        thread_name_prefix="onnxcam-explain",
        initializer=numba.set_num_threads,  # per thread: kernels share the cores like ORT
        initargs=(min(threads, numba.config.NUMBA_NUM_THREADS),),
    )

    def load(group: list[Item]) -> list[Future]:
        return [load_pool.submit(worker.load, item) for item in group]

    try:
        loading = deque(load(group) for group in groups[:ahead])
        running: deque[Future] = deque()
        for next_group in range(ahead, len(groups) + ahead):
            running.append(explain_pool.submit(explain_and_write, loading.popleft()))
            if next_group < len(groups):
                loading.append(load(groups[next_group]))
            while running and (len(running) > count or running[0].done()):
                yield running.popleft().result()
        while running:
            yield running.popleft().result()
    finally:  # on an error or an early stop, queued groups are dropped, running ones finish
        for pool in (explain_pool, load_pool):
            pool.shutdown(wait=True, cancel_futures=True)
