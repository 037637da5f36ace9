"""The Ray engine: Ray Data's map_batches over an actor pool, each actor holding one Worker (one
warm Explainer; one GPU per actor on the CUDA provider). Actors write the same files as the
local engine, so the output folder must be reachable from every node (a shared filesystem)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, fields, replace

import numpy as np

from onnxcam.dataset.inputs import Item
from onnxcam.dataset.manifest import Row
from onnxcam.dataset.worker import Job, Worker
from onnxcam.io import json_text

GPU_PROVIDERS = ("cuda", "tensorrt")


class RayWorker:
    """The callable class map_batches runs in each actor."""

    def __init__(self, job: Job) -> None:
        self.worker = Worker(job)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        columns = [batch[f.name] for f in fields(Item)]
        items = [
            Item(int(index), str(path), str(name), int(size), int(mtime))
            for index, path, name, size, mtime in zip(*columns, strict=True)
        ]
        rows = self.worker.run(items)
        return {"row": np.array([json_text(asdict(row)) for row in rows], dtype=object)}


def explain_ray(
    job: Job, items: list[Item], workers: int | None = None, address: str | None = None
) -> Iterator[list[Row]]:
    """Explain `items` on `workers` actors (default 2) of the Ray cluster at `address` (or the
    one already initialised in this process, or a new local one); yields rows as groups finish.
    Each actor runs ORT on job.threads threads (default 1) and reserves as many CPUs."""
    try:
        import ray
    except ImportError as err:
        raise ImportError("the ray engine needs Ray: pip install 'onnxcam[ray]'") from err
    own = not ray.is_initialized()
    if own:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        threads = job.threads or 1
        gpus = 1 if job.provider.lower() in GPU_PROVIDERS else 0
        dataset = ray.data.from_items(
            [asdict(item) for item in items], override_num_blocks=max(1, len(items) // job.chunk)
        ).map_batches(
            RayWorker,
            fn_constructor_args=(replace(job, threads=threads),),
            batch_size=job.chunk,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers or 2),
            num_cpus=threads,
            num_gpus=gpus,
        )
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            yield [Row(**json.loads(text)) for text in batch["row"]]
    finally:
        if own:
            ray.shutdown()
