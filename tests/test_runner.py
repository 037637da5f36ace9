"""Providers, sessions, the pipelined perturbation loop and the ONNX Runtime install check."""

from __future__ import annotations

import threading
import warnings

import numba
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnxcam import Explainer
from onnxcam.engine.ort import check_runtime_install, onnxruntime
from onnxcam.engine.runner import (
    MIN_BLOCK,
    PROVIDERS,
    Perturbation,
    Runner,
    open_session,
    provider_chain,
)
from onnxcam.errors import ProviderError

HAS_CUDA = "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def sum_model() -> onnx.ModelProto:
    """logits[n] = [sum(x[n]), -sum(x[n])]: easy to predict for any perturbation."""
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0, axes=[1, 2, 3]),
        helper.make_node("Unsqueeze", ["s"], ["s1"], axes=[1]),
        helper.make_node("Neg", ["s1"], ["n1"]),
        helper.make_node("Concat", ["s1", "n1"], ["logits"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "sum",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=7)


class Constant(Perturbation):
    """Item i is filled with the value i; records the buffers and threads it was given."""

    def __init__(self, n: int) -> None:
        self.n_items = n
        self.item_shape = (2, 3, 3)
        self.buffers: set[int] = set()
        self.threads: set[str] = set()
        self.numba_threads: set[int] = set()

    def fill(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        self.buffers.add(id(out))
        self.threads.add(threading.current_thread().name)
        self.numba_threads.add(numba.get_num_threads())
        out[: stop - start] = np.arange(start, stop, dtype=np.float32)[:, None, None, None]
        return out[: stop - start]


@pytest.mark.parametrize(("n", "batch"), [(23, 4), (8, 8), (3, 64), (0, 4), (100, 4), (70, 40)])
def test_map_batches_scores_in_order_with_two_buffers(n, batch):
    runner = Runner(sum_model())
    perturbation = Constant(n)
    scores = runner.map_batches(
        perturbation, "logits", lambda out, s, e: out[:, 0], batch_size=batch, progress=False
    )
    np.testing.assert_allclose(scores, np.arange(n) * 18.0)
    assert len(perturbation.buffers) <= 2  # memory bounded by two batches, not by n
    blocks = -(-n // max(batch, MIN_BLOCK))
    if blocks > 1:  # built on the worker while ORT runs the previous block
        assert perturbation.threads == {"onnxcam-blocks_0"}
    elif n:  # one block: nothing to overlap, built where it is run
        assert perturbation.threads == {threading.current_thread().name}
    if n and numba.config.NUMBA_NUM_THREADS > 1:  # one Numba thread beside ORT's (OpenMP spins)
        assert perturbation.numba_threads == {1}
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS  # restored after


def test_score_function_sees_its_slice():
    seen = []
    Runner(sum_model()).map_batches(
        Constant(10),
        "logits",
        lambda out, s, e: seen.append((s, e, len(out))) or out[:, 1],
        4,
        False,
    )
    assert seen == [(0, 4, 4), (4, 8, 4), (8, 10, 2)]


def test_unknown_provider():
    with pytest.raises(ProviderError, match="unknown provider 'tpu'"):
        provider_chain("tpu", False)


@pytest.mark.skipif(HAS_CUDA, reason="checks the behaviour without CUDA")
def test_missing_provider_is_an_error_unless_fallback_is_allowed(resnet_onnx):
    with pytest.raises(ProviderError, match="not available") as info:
        Explainer(resnet_onnx, provider="cuda")
    assert "CPUExecutionProvider" in str(info.value)
    with pytest.warns(RuntimeWarning, match="runs on CPUExecutionProvider"):
        fallen = Explainer(resnet_onnx, provider="cuda", allow_fallback=True)
    assert fallen.provider == PROVIDERS["cpu"]


def test_threads_and_session_cache():
    session = open_session(sum_model(), threads=1)
    assert session.get_session_options().intra_op_num_threads == 1
    assert open_session(sum_model(), threads=1) is session
    assert open_session(sum_model(), threads=2) is not session


def test_runtime_install_check():
    with pytest.raises(ImportError, match=r"onnxcam\[cpu\]"):
        check_runtime_install([])
    with pytest.warns(RuntimeWarning, match="onnxruntime, onnxruntime-gpu"):
        check_runtime_install(["onnxruntime", "onnxruntime-gpu"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_runtime_install(["onnxruntime"])


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime-gpu and a CUDA GPU")
def test_cuda_with_io_binding_equals_cpu(resnet_onnx, images):
    gpu = Explainer(resnet_onnx, layer="layer2", provider="cuda", progress=False)
    assert gpu.provider == PROVIDERS["cuda"] and gpu.runner._device == "cuda"
    cpu = Explainer(resnet_onnx, layer="layer2", progress=False)
    got, want = gpu.explain(images), cpu.explain(images)
    np.testing.assert_allclose(got.weights, want.weights, atol=1e-4)
    np.testing.assert_allclose(got.maps, want.maps, atol=1e-3)


def test_overlapping_explain_calls_keep_blas_on_one_thread_until_the_last_leaves():
    """BLAS's thread count is one process setting: with two calls inside at once (threads of a
    dataset run), the first to leave must not restore it under the second, nor the second
    leave it at one."""
    from threadpoolctl import threadpool_limits

    from onnxcam.engine import blas

    def threads() -> set[int]:
        return {lib["num_threads"] for lib in blas.controller().select(user_api="blas").info()}

    with threadpool_limits(limits=2, user_api="blas"):
        if not threads():
            pytest.skip("no BLAS library loaded")
        first, second = blas.single_threaded(), blas.single_threaded()
        first.__enter__()
        second.__enter__()
        assert threads() == {1}
        first.__exit__(None, None, None)
        assert threads() == {1}  # the second call is still inside
        second.__exit__(None, None, None)
        assert threads() == {2}
