"""ReciproCAM (Byun & Lee, arXiv 2209.14074, algorithms §2.12b)."""

from __future__ import annotations

import numpy as np

from onnxcam.engine.methods.base import Context, Method, MethodOutput, passes_of
from onnxcam.engine.methods.parts.activations import ActivationEdits, tail_route
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import flag
from onnxcam.engine.postprocess import PostProcess, finish_maps
from onnxcam.errors import LayerError

#: Min-max at layer resolution, resize, then min-max again so that every method's maps reach 1.
POST = PostProcess(normalize_before_resize=True)
#: Most layer positions explained (one tail pass each per input): a 256 x 256 grid.
MAX_LOCATIONS = 256 * 256


def spread_kernel(ndim: int) -> np.ndarray:
    """[1, 2, 1] / 4 along each spatial axis: the 3-tap (3x3 in 2-D) spreading kernel."""
    taps = np.array([1.0, 2.0, 1.0]) / 4
    kernel = taps
    for _ in range(ndim - 1):
        kernel = np.multiply.outer(kernel, taps)
    return kernel.astype(np.float32)


def _inside(spatial: tuple[int, ...], offset: np.ndarray) -> np.ndarray:
    """(positions,) 1 where the position moved by `offset` is still inside the map, else 0."""
    coords = np.indices(spatial).reshape(len(spatial), -1).T + offset
    return np.all((coords >= 0) & (coords < np.array(spatial)), axis=1).astype(np.float64)


@register
class ReciproCAM(Method):
    """ReciproCAM (Byun & Lee, arXiv 2209.14074): one feature map per location keeps only that
    location's channel vector; the class probability of the graph's tail on it is the map.

    S(i, j) = p^c(tail(F_ij)), F_ij zero but at (i, j) (or the vector spread over the 3x3
    neighbourhood with [1, 2, 1] / 4 per axis, `gaussian`); min-max normalised, upsampled.
    When the tail starts with a global average pool, F_ij's mean (A[:, i, j] times the kernel
    weight that stays inside the map, over the number of positions) runs the graph after it.
    """

    name = "recipro-cam"
    passes = "h·w, **tail only**"

    gaussian: bool = flag(False, "spread each location's vector with the [1, 2, 1] kernel")

    def explain(self, ctx: Context) -> MethodOutput:
        acts = ctx.activations
        n_images, spatial = acts.shape[0], acts.shape[2:]
        n_locations = int(np.prod(spatial))
        if n_locations > MAX_LOCATIONS:
            raise LayerError(
                f"recipro-cam runs the tail once per position of the layer, and layer "
                f"{ctx.views.layer!r} has {n_locations} positions: expected at most "
                f"{MAX_LOCATIONS} (choose a deeper layer)"
            )
        images = np.repeat(np.arange(n_images), n_locations)
        locations = np.tile(np.arange(n_locations), n_images)
        if self.gaussian:
            kernel = spread_kernel(len(spatial))
            taps = [(np.array(o) - 1, kernel[o]) for o in np.ndindex(kernel.shape)]
        else:
            taps = [(np.zeros(len(spatial), int), 1.0)]

        source, scorer, crossing = tail_route(ctx)
        if ctx.pooled is not None:  # F_ij's mean: A[:, i, j] times its taps inside the map
            flat = acts.reshape(*acts.shape[:2], n_locations)
            inside = sum(weight * _inside(spatial, offset) for offset, weight in taps)
            scale = inside / n_locations

            def mosaic(batch: np.ndarray, start: int, stop: int) -> None:
                where = locations[start:stop]
                means = flat[images[start:stop], :, where] * scale[where, None]
                batch[:] = means.reshape(batch.shape)

        else:

            def mosaic(batch: np.ndarray, start: int, stop: int) -> None:
                batch[:] = 0
                for b, i in enumerate(range(start, stop)):
                    centre = np.array(np.unravel_index(locations[i], spatial))
                    vector = acts[images[i]][(slice(None), *centre)]
                    for offset, weight in taps:
                        where = centre + offset
                        if np.all(where >= 0) and np.all(where < spatial):
                            batch[(b, slice(None), *where)] = vector * weight

        edits = ActivationEdits(source, images, mosaic, crossing)
        scores = scorer.score(edits, ctx.targets[images], "prob", self.name)
        raw = scores.reshape(n_images, *spatial).astype(np.float32)
        maps, constant = finish_maps(raw, ctx.input_size, POST)
        metadata = {
            "gaussian": self.gaussian,
            "pooled": ctx.pooled is not None,
            **passes_of(images, n_images),
            "constant_maps": constant.tolist(),
        }
        return MethodOutput(raw, maps, None, metadata)
