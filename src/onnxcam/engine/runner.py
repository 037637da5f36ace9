"""One ONNX Runtime session per model graph, and the batched evaluation of perturbations.

`map_batches` is the only batching loop of the perturbation methods: a method describes its
perturbed inputs as a `Perturbation`, and the runner builds each block of them into one of two
reused buffers on a worker thread while ORT (which releases the GIL) runs the previous block.
Memory stays at two blocks whatever the number of perturbations.
"""

from __future__ import annotations

import hashlib
import re
import threading
import warnings
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numba
import numpy as np
import onnx
from tqdm.auto import tqdm

from onnxcam.engine.backward.sweep import seed_name
from onnxcam.engine.graph import model_input, numpy_dtype, tensor_specs, unshare_weights
from onnxcam.engine.ort import onnxruntime as ort
from onnxcam.errors import ModelError, ProviderError
from onnxcam.kernels._jit import one_thread

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}
#: What each provider falls back to when fallback is allowed, best first.
FALLBACKS = {"tensorrt": ["cuda", "cpu"]}
ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}
#: How ORT names a failed node, at run time ("running <Op> node. Name:'<name>' Status
#: Message: <reason>") and at load time ("Node (<name>) Op (<Op>) <reason>").
_RUN_FAILURE = re.compile(r"running (\w+) node\. Name:'([^']*)'(?: Status Message: )?(.*)")
_LOAD_FAILURE = re.compile(r"Node \(([^)]*)\) Op \((\w+)\) (.*)")
_SESSION_CACHE_SIZE = 8
#: Fewest perturbed inputs the worker builds per hand-over (memory: two such blocks).
MIN_BLOCK = 32
_sessions: OrderedDict[tuple, ort.InferenceSession] = OrderedDict()


class Perturbation(ABC):
    """A lazily built sequence of perturbed model inputs: `n_items` of shape `item_shape`."""

    n_items: int
    item_shape: tuple[int, ...]

    @abstractmethod
    def fill(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        """Build items [start, stop) into out[: stop - start] and return that view."""

    def feeds(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Further graph inputs for items [start, stop), e.g. tensors that cross a graph cut."""
        return {}


ScoreFn = Callable[[np.ndarray, int, int], np.ndarray]


#: ORT's session.intra_op.allow_spinning. Off: between runs the Python thread builds the next
#: block of inputs, and spinning idle threads would take its core (docs/design.md).
INTRA_OP_SPINNING = "0"


def provider_chain(provider: str, allow_fallback: bool) -> list[str]:
    """ORT provider names to ask for, the requested one first; CPU last when fallback is allowed."""
    key = provider.lower()
    if key not in PROVIDERS:
        raise ProviderError(
            f"unknown provider {provider!r}: expected one of {', '.join(PROVIDERS)}"
        )
    chain = [key, *FALLBACKS.get(key, ["cpu"])] if allow_fallback else [key]
    if key != "cpu" and not allow_fallback:
        chain.append("cpu")  # ORT needs CPU for the ops a device provider leaves; checked below
    available = set(ort.get_available_providers())
    if PROVIDERS[key] not in available and not allow_fallback:
        raise ProviderError(
            f"provider {provider!r} ({PROVIDERS[key]}) is not available in this ONNX Runtime "
            f"build; available: {', '.join(sorted(available))}. Install onnxcam[gpu] for CUDA, "
            "or pass allow_fallback=True (--allow-fallback) to fall back"
        )
    return [PROVIDERS[p] for p in dict.fromkeys(chain) if PROVIDERS[p] in available]


def open_session(
    model: onnx.ModelProto,
    provider: str = "cpu",
    threads: int | None = None,
    allow_fallback: bool = False,
) -> ort.InferenceSession:
    """An InferenceSession on `provider`, cached per (graph, provider, threads)."""
    if provider.lower() == "openvino":
        model = unshare_weights(model, "ConvTranspose")
    data = model.SerializeToString()
    providers = provider_chain(provider, allow_fallback)
    key = (hashlib.sha1(data).hexdigest(), tuple(providers), threads, allow_fallback)
    if key in _sessions:
        _sessions.move_to_end(key)
        return _sessions[key]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 4  # failures become ModelErrors; ORT need not print them
    options.add_session_config_entry("session.intra_op.allow_spinning", INTRA_OP_SPINNING)
    if threads:
        options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(data, sess_options=options, providers=providers)
    except Exception as err:  # ORT raises its own exception types
        raise ModelError(f"ONNX Runtime cannot load the model: {ort_reason(err)}") from err
    got = session.get_providers()[0]
    if got != PROVIDERS[provider.lower()]:
        message = f"asked for provider {provider!r} but the session runs on {got}"
        if not allow_fallback:
            raise ProviderError(
                f"{message}; pass allow_fallback=True (--allow-fallback) to accept that"
            )
        warnings.warn(f"{message} (fallback allowed)", RuntimeWarning, stacklevel=3)
    _sessions[key] = session
    while len(_sessions) > _SESSION_CACHE_SIZE:
        _sessions.popitem(last=False)
    return session


class Runner:
    """Runs one model graph in batches on one provider."""

    def __init__(
        self,
        model: onnx.ModelProto,
        provider: str = "cpu",
        threads: int | None = None,
        allow_fallback: bool = False,
        input_name: str | None = None,
    ) -> None:
        self.session = open_session(model, provider, threads, allow_fallback)
        spec = model_input(model) if input_name is None else tensor_specs(model)[input_name]
        self.input_name = spec.name
        self.input_dtype = numpy_dtype(spec.elem_type)
        #: The dtype each graph input takes (seeds and crossing tensors follow the model's).
        self.feed_dtypes = {
            i.name: ORT_TYPES.get(i.type, np.float32) for i in self.session.get_inputs()
        }
        self.provider = self.session.get_providers()[0]
        self._device = (
            "cuda" if self.provider in (PROVIDERS["cuda"], PROVIDERS["tensorrt"]) else None
        )

    def seed_feeds(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The feeds that seed this backward graph at score tensors with (N, classes) rows,
        each reshaped to its seed input's own shape (e.g. (N, classes, 1, 1))."""
        shapes = {i.name: i.shape for i in self.session.get_inputs()}
        feeds = {}
        for tensor, seed in rows.items():
            name = seed_name(tensor)
            rest = [d if isinstance(d, int) else -1 for d in (shapes.get(name) or [])[1:]]
            shape = (len(seed), *rest) if rest and rest.count(-1) <= 1 else seed.shape
            feeds[name] = seed.reshape(shape)
        return feeds

    def run_batch(
        self, x: np.ndarray, outputs: list[str], feeds: dict[str, np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """One inference on one batch; on CUDA, IO binding copies the inputs to the device once.
        Every feed is cast to the dtype its graph input takes; ONNX Runtime's failures are
        ModelErrors naming the node and op (runtime_error)."""
        given = {self.input_name: x, **(feeds or {})}
        inputs = {
            name: value.astype(self.feed_dtypes.get(name, value.dtype), copy=False)
            for name, value in given.items()
        }
        try:
            return self._run(outputs, inputs)
        except Exception as err:  # ORT raises its own types (Fail, InvalidArgument, ...)
            if type(err).__module__.startswith("onnxruntime"):
                raise runtime_error(err) from err
            raise

    def _run(self, outputs: list[str], inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self._device is None:
            return self.session.run(outputs, inputs)
        binding = self.session.io_binding()
        for name, value in inputs.items():
            device_value = ort.OrtValue.ortvalue_from_numpy(
                np.ascontiguousarray(value), self._device, 0
            )
            binding.bind_ortvalue_input(name, device_value)
        for name in outputs:
            binding.bind_output(name, "cpu")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()

    def run(
        self,
        x: np.ndarray,
        outputs: list[str],
        batch_size: int,
        feeds: dict[str, np.ndarray] | None = None,
    ) -> list[np.ndarray]:
        """Outputs for all of x (and per-row feeds), run batch_size rows at a time."""
        feeds = feeds or {}
        parts = [
            self.run_batch(
                x[i : i + batch_size],
                outputs,
                {name: value[i : i + batch_size] for name, value in feeds.items()},
            )
            for i in _starts(len(x), batch_size)
        ]
        if len(parts) == 1:  # ORT's own arrays: no copy
            return parts[0]
        return [np.concatenate([p[j] for p in parts]) for j in range(len(outputs))]

    def map_batches(
        self,
        perturbation: Perturbation,
        output: str,
        score: ScoreFn,
        batch_size: int,
        progress: bool = True,
        desc: str = "passes",
    ) -> np.ndarray:
        """Score every perturbed input: score(outputs, start, stop) -> (stop - start,) values.

        The worker thread builds blocks of at least MIN_BLOCK items (several ORT batches when
        batch_size is small), so the hand-over between threads is paid once per block.
        """
        n = perturbation.n_items
        scores = np.empty(n, np.float64)
        if n == 0:
            return scores
        block = min(n, max(batch_size, MIN_BLOCK))
        starts = list(_starts(n, block))
        slots = 2 if len(starts) > 1 else 1  # the worker fills one while ORT reads the other
        buffers = [np.empty((block, *perturbation.item_shape), np.float32) for _ in range(slots)]

        def build(start: int, slot: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            stop = min(start + block, n)
            return perturbation.fill(start, stop, buffers[slot]), perturbation.feeds(start, stop)

        def build_here() -> tuple[np.ndarray, dict[str, np.ndarray]]:
            """The one block, on this thread; Numba on one thread where ORT runs on the CPU
            (its OpenMP threads spin on after a kernel and slow the ORT run that follows)."""
            with one_thread() if self._device is None else nullcontext():
                return build(0, 0)

        with tqdm(total=n, desc=desc, unit="pass", disable=not progress, leave=False) as bar:
            # one block: nothing to overlap, so no hand-over to a thread that may lack a core
            worker = _worker(self._device is None) if len(starts) > 1 else None
            pending = worker.submit(build, 0, 0) if worker else None
            for i, start in enumerate(starts):
                inputs, feeds = pending.result() if worker else build_here()
                if worker and i + 1 < len(starts):
                    pending = worker.submit(build, starts[i + 1], (i + 1) % 2)
                for lo in range(0, len(inputs), batch_size):
                    hi = min(lo + batch_size, len(inputs))
                    part = {name: value[lo:hi] for name, value in feeds.items()}
                    (out,) = self.run_batch(inputs[lo:hi], [output], part)
                    scores[start + lo : start + hi] = score(out, start + lo, start + hi)
                    bar.update(hi - lo)
        return scores


_workers = threading.local()


def _worker(cpu: bool) -> ThreadPoolExecutor:
    """The thread that builds blocks of perturbed inputs while ORT runs the previous block:
    one per calling thread (explain threads of a dataset run each have their own), started
    once, not per call. On the CPU provider ORT's threads own the cores, so it runs Numba on
    one thread."""
    key = "cpu" if cpu else "device"
    if not hasattr(_workers, key):
        setup = {"initializer": numba.set_num_threads, "initargs": (1,)} if cpu else {}
        setattr(_workers, key, ThreadPoolExecutor(1, thread_name_prefix="onnxcam-blocks", **setup))
    return getattr(_workers, key)


def _named(text: str) -> str | None:
    """ "<Op> node '<name>': <reason>" where ORT's message names a node, else None."""
    for pattern, order in ((_RUN_FAILURE, (0, 1)), (_LOAD_FAILURE, (1, 0))):
        found = pattern.search(text)
        if found:
            groups = found.groups()
            op, node = groups[order[0]], groups[order[1]]
            return f"{op} node {node!r}: {groups[2].strip()[:300]}"
    return None


def ort_reason(err: Exception) -> str:
    """ORT's message in one line, starting with the op and node it names where it names one."""
    text = " ".join(str(err).split())
    return _named(text) or text[:300]


def runtime_error(err: Exception) -> ModelError:
    """An ORT run failure as one ModelError naming the op and node."""
    text = " ".join(str(err).split())
    named = _named(text)
    if named:
        return ModelError(f"ONNX Runtime failed in {named}")
    return ModelError(f"ONNX Runtime failed running the model: {text[:300]}")


def _starts(n: int, size: int) -> Iterator[int]:
    return iter(range(0, n, size))
