"""Dual-MTGAN's frozen configuration (tfvidgen.models.dual_mtgan has the paper and every
inferred choice): sizes are [I], loss weights the paper's."""

from __future__ import annotations

import dataclasses
import math

__all__ = ["DualMTGANConfig"]


@dataclasses.dataclass(frozen=True)
class DualMTGANConfig:
    """Dual-MTGAN hyper-parameters. Sizes are [I]; loss weights are the paper's."""

    content_dim: int = 128            # z_c [I]
    motion_dim: int = 64              # z_M (mu and log sigma^2 heads) [I]
    frame_motion_dim: int = 64        # z_m^t [I]
    lstm_units: int = 256             # G_T hidden size [I]
    base_channels: int = 64           # E_C / G_I width (DCGAN 64) [I]
    motion_channels: int = 64         # E_M width [I]
    d_channels: int = 64              # D_I / D_V width [I]
    lambda_1: float = 10.0            # L_C + L_rec + L_M [P]
    lambda_kl: float = 1e-2           # [P]
    lambda_image: float = 1e-4        # pair image GAN [P]
    lambda_video: float = 1.0         # video GAN [P]
    reconstruction_content: str = "per_frame"   # Eq. 3 [P]; "first_frame" [I]
    stochastic_in_gan: bool = True    # V~_ys in the GAN y-terms [I]
    content_tanh: bool = False        # tanh on z_c as in DRNet [I]
    content_skips: bool = False       # U-Net skips E_C(conditioning image) -> G_I [I], not paper
    motion_cycle: bool = True         # L_M (Eq. 7); False: the paper's "w/o L_M" ablation [P]
    mismatch_pairs: bool = True       # D_I's mismatched real pairs (Eq. 5); False: ablation
    conditional: bool = False
    resolution: int = 64
    num_frames: int = 16
    num_classes: int = 1

    DATA_FIELDS = ("resolution", "num_frames", "num_classes")

    @property
    def levels(self) -> int:
        """Stride-2 stages between the resolution and 4x4."""
        return int(math.log2(self.resolution // 4))

    def validate(self) -> "DualMTGANConfig":
        if self.resolution < 8 or 4 * 2 ** self.levels != self.resolution:
            raise ValueError(f"--resolution={self.resolution}: Dual-MTGAN needs a power of two "
                             f">= 8")
        if self.num_frames < 2:
            raise ValueError(f"--num_frames={self.num_frames}: Dual-MTGAN needs >= 2 (L_C "
                             f"compares consecutive frames)")
        if self.reconstruction_content not in ("per_frame", "first_frame"):
            raise ValueError(f"--model_param reconstruction_content="
                             f"{self.reconstruction_content!r}: expected 'per_frame' or "
                             f"'first_frame'")
        for name in ("content_dim", "motion_dim", "frame_motion_dim", "lstm_units",
                     "base_channels", "motion_channels", "d_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"--model_param {name}={getattr(self, name)}: expected >= 1")
        for name in ("lambda_1", "lambda_kl", "lambda_image", "lambda_video"):
            if getattr(self, name) < 0:
                raise ValueError(f"--model_param {name}={getattr(self, name)}: expected >= 0")
        if self.conditional and self.num_classes < 2:
            raise ValueError("--model_param conditional=true needs a labelled dataset with at "
                             "least 2 classes")
        return self
