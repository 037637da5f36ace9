"""Score-CAM (Wang et al., CVPR-W 2020) and Faster Score-CAM (algorithms §2.7, §2.10)."""

from __future__ import annotations

from onnxcam.engine.methods.parts.masking import MaskProfile, MaskScoring
from onnxcam.engine.methods.registry import register
from onnxcam.engine.options import choice, integer
from onnxcam.engine.postprocess import PostProcess

#: The choices on which implementations disagree, pinned to reproduce each one's numbers.
PROFILES = {
    "paper": MaskProfile(),
    "pgc": MaskProfile(
        mask_align_corners=True,
        skip_constant=False,
        post=PostProcess(eps=1e-7, normalize_before_resize=True),
    ),
    "official": MaskProfile(
        score="prob",
        channel_softmax=False,
        mask_eps=0.0,
        post=PostProcess(eps=0.0, relu_after_resize=True),
    ),
}


@register
class ScoreCAM(MaskScoring):
    """Score-CAM (Wang et al., CVPR-W 2020): each channel's map masks the input; channel weights
    are the softmax over channels of the masked inputs' class logits.

    H_k = s(Up(A_k)), S_k = y^c(X * H_k), w = softmax_k(S), L = ReLU(sum_k w_k A_k).

    Profiles pin where implementations differ: `paper` (default: logit, channel softmax, masks
    resized with align_corners=False then min-max with eps 1e-8, constant channels skipped with
    weight 0); `pgc` (pytorch-grad-cam: align_corners=True masks, constant channels forwarded as
    zero masks, min-max with eps 1e-7 before and after the resize); `official` (the authors' code:
    softmax probability, no channel softmax, combination and ReLU at input resolution). Channels
    whose normalised maps are equal build equal masked inputs and share one pass.
    """

    name = "score-cam"
    passes = "non-constant channels"

    profile: str = choice("paper", PROFILES, "whose numbers to reproduce", what="Score-CAM profile")

    @property
    def profile_name(self) -> str:
        return self.profile

    @property
    def profile_settings(self) -> MaskProfile:
        return PROFILES[self.profile]


@register
class FasterScoreCAM(ScoreCAM):
    """Faster Score-CAM (tabayashi0117's Score-CAM code, 2021; tf-keras-vis `max_N`): Score-CAM
    on the channels of largest spatial standard deviation.

    Per image only the `max_channels` channels of largest std_ij(A^k_ij) get masked passes;
    L = ReLU(sum_{k in top} w_k A^k), the other channels weigh 0.
    """

    name = "faster-score-cam"
    passes = "`max_channels`"

    max_channels: int | None = integer(
        10, "channels of largest spatial std kept per image (None: all)", low=1, optional=True
    )
