"""The explanation methods, one module each over the shared parts in `parts/`; importing this
package registers them all."""

from onnxcam.engine.methods import (  # noqa: F401  (import registers the methods)
    ablation_cam,
    abs_cam,
    attention_rollout,
    d_rise,
    eigen_cam,
    grad_cam,
    grad_cam_pp,
    gradient_rollout,
    group_cam,
    hires_cam,
    is_cam,
    layer_cam,
    legrad,
    lrp,
    occlusion,
    recipro_cam,
    rise,
    salience_cam,
    score_cam,
    sr_map,
    ss_cam,
    xgrad_cam,
)
from onnxcam.engine.methods.base import (
    ChannelWeightMethod,
    Context,
    Method,
    MethodOutput,
)
from onnxcam.engine.methods.registry import (
    create,
    markdown_table,
    method_class,
    methods,
    options_of,
    parse_options,
    register,
)

__all__ = [
    "ChannelWeightMethod",
    "Context",
    "Method",
    "MethodOutput",
    "create",
    "markdown_table",
    "method_class",
    "methods",
    "options_of",
    "parse_options",
    "register",
]
