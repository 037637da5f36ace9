"""LLVM's minnum and maxnum for kernels: the smaller and larger of two floats of one type, the
other one where either is NaN. LLVM vectorises an elementwise minnum (on AVX2: vminps and a NaN
fix-up) under both LLVMs tried, 14 (Numba 0.59) and 22 (Numba 0.68); Numba's built-in float min
and max, a compare and select with NaN checks, stayed scalar under LLVM 22 even elementwise
(bench/README.md, "Latency of one-image calls")."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


def _float_intrinsic(name: str):
    """A Numba intrinsic calling `llvm.<name>` on two floats of one type."""

    def typing(typingctx, a, b):
        if not isinstance(a, types.Float) or a != b:
            return None

        def codegen(context, builder, signature, args):
            kind = context.get_value_type(a)
            function = builder.module.declare_intrinsic(
                f"llvm.{name}", [kind], ir.FunctionType(kind, [kind, kind])
            )
            return builder.call(function, args)

        return a(a, b), codegen

    typing.__name__ = typing.__qualname__ = f"llvm_{name}"  # the name typing errors show
    return intrinsic(typing)


fmin = _float_intrinsic("minnum")
fmax = _float_intrinsic("maxnum")
