"""The local engine: one warm Explainer in this process; decoding runs ahead on loader threads
and writing runs behind on a writer thread while the Explainer works on the current group."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from onnxcam.dataset.inputs import Item
from onnxcam.dataset.manifest import Row
from onnxcam.dataset.worker import Job, Loaded, Worker

#: Groups decoded ahead of the one being explained (memory: that many groups of inputs).
PREFETCH = 2


def explain_local(job: Job, items: list[Item], loaders: int | None = None) -> Iterator[list[Row]]:
    """Explain `items` in groups of job.chunk; yields each group's rows once they are written."""
    worker = Worker(job)
    groups = [items[i : i + job.chunk] for i in range(0, len(items), job.chunk)]
    with (
        ThreadPoolExecutor(loaders or 1, thread_name_prefix="onnxcam-load") as load_pool,
        ThreadPoolExecutor(1, thread_name_prefix="onnxcam-write") as write_pool,
    ):

        def load(group: list[Item]) -> list[Future]:
            return [load_pool.submit(worker.load, item) for item in group]

        loading = deque(load(group) for group in groups[:PREFETCH])
        writing: deque[Future] = deque()
        for next_group in range(PREFETCH, len(groups) + PREFETCH):
            entries = [future.result() for future in loading.popleft()]
            if next_group < len(groups):
                loading.append(load(groups[next_group]))
            errors = [entry for entry in entries if isinstance(entry, Row)]
            good = [entry for entry in entries if isinstance(entry, Loaded)]
            writing.append(write_pool.submit(worker.write, [*errors, *worker.explain(good)]))
            while writing and (len(writing) > 1 or writing[0].done()):
                yield writing.popleft().result()
        while writing:
            yield writing.popleft().result()
