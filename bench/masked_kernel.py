"""Faster Score-CAM's masked inputs on their own: the kernel that builds 10 of them at 224 x 224
from a (1280, 7, 7) layer, on one Numba thread (as a call builds them beside ORT) and on all, and
three of its parts alone: NumPy's multiply of the input by a mask into the same 6 MB (the write
floor), the 10 resizes (`kernels.resize`, which also allocates their 2 MB), and the min and max
of one 224 x 224 mask (`kernels.normalize.min_max`) against NumPy's min and max.

    cd bench && PYTHONPATH=../src python masked_kernel.py [--repeats 300]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from scorecam import emit

from onnxcam.kernels import masked_inputs, resize
from onnxcam.kernels._jit import one_thread
from onnxcam.kernels.normalize import min_max

ITEMS, SIZE, LAYER = 10, (224, 224), (1280, 7, 7)


def median_ms(work: Callable[[], object], repeats: int) -> float:
    work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return round(float(np.median(times)) * 1e3, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, *SIZE)).astype(np.float32)
    layer = rng.standard_normal((1, *LAYER)).astype(np.float32)
    images, channels = np.zeros(ITEMS, np.int64), np.arange(ITEMS) * 7
    out = np.empty((ITEMS, *x.shape[1:]), np.float32)
    maps = layer[0, channels]
    mask = resize(maps[:1], SIZE)[0]

    def build():
        masked_inputs(x, layer, images, channels, out)

    def multiply():
        for item in out:
            np.multiply(x[0], mask, out=item)

    all_threads = median_ms(build, args.repeats)
    with one_thread():
        one = median_ms(build, args.repeats)
        floor = median_ms(multiply, args.repeats)
        resizes = median_ms(lambda: resize(maps, SIZE), args.repeats)
        extremes = median_ms(lambda: min_max(mask.reshape(-1)), args.repeats)
        numpy_extremes = median_ms(lambda: (mask.min(), mask.max()), args.repeats)
    emit(
        "masked_kernel",
        items=ITEMS,
        one_thread_ms=one,
        all_threads_ms=all_threads,
        numpy_multiply_ms=floor,
        resizes_ms=resizes,
        min_max_us=round(extremes * 1e3, 1),
        numpy_min_max_us=round(numpy_extremes * 1e3, 1),
        one_thread_over_multiply=round(one / floor, 2),
    )


if __name__ == "__main__":
    main()
