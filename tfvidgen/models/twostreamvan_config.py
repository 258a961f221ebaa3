"""TwoStreamVAN's frozen configuration (tfvidgen.models.twostreamvan has the paper, the code
and every choice): the Weizmann values of the paper's Table 6 by default."""

from __future__ import annotations

import dataclasses

__all__ = ["TwoStreamVANConfig", "NUM_FUSION_SCALES"]

#: fusion scales, coarse to fine, relative to the base map (res / 8)
NUM_FUSION_SCALES = 4
#: salts of the model's per-example draws (noise.per_example_*): one per kind of draw
(SALT_Z_C, SALT_Z_M, SALT_FRAME, SALT_POSTERIOR_C, SALT_PRIOR_C, SALT_PRED_T, SALT_POSTERIOR_M,
 SALT_PRIOR_M, SALT_TEACHER) = range(1, 10)


@dataclasses.dataclass(frozen=True)
class TwoStreamVANConfig:
    """TwoStreamVAN hyper-parameters (Weizmann values of Table 6 by default)."""

    conditional: bool = True           # [P] class-conditional (one-hot k); False: unlabelled
    gf_dim: int = 16                   # ngf [P Table 6]
    content_dim: int = 512             # C [P]
    motion_dim: int = 64               # M [P]
    motion_width: int = 16             # E_m / ConvLSTM / motion map width (16 in the code) [C]
    joint_dim: int = 64                # FC(e_m) width before the outer product with h_fc1 [C]
    encoder_extra_conv: bool = False   # [C] E_c's extra stride-1 first conv (paper: 5 convs)
    kernel_size: int = 5               # n of the adaptive kernels [P][C]
    num_scales: int = 4                # fusion scales 1-4, the finest ones [P Table 3]
    masks: bool = True                 # False: the -M ablation (h^ = adapted map) [P]
    single_generator: bool = False     # SGVAN ablation: one generator, no fusion [P]
    lambda_recon: float = 1e4          # lambda1 = lambda4 (L2 of frames / videos) [P]
    lambda_content_kl: float = 7.0     # lambda2 [P]
    lambda_scale: float = 1e2          # lambda3 (scale-feature L2) [P]
    lambda_motion_kl_start: float = 2.0    # lambda5 ramp [P]
    lambda_motion_kl_end: float = 20.0
    motion_kl_reduction: str = "mean"  # the video task's motion KL: "mean" over the B x (T-1)
                                       # steps [C] (Table 6's lambda5 are the code's weights);
                                       # "sum": Eq. 5's literal sum_t of batch means [P], (T-1)x
    lambda_pred_kl: float = 7.0        # KL weight of the pred task [C]
    image_adv_weight: float = 10.0     # weight of D_I's generator terms [C]
    prior_weight: float = 1.0          # weight of the prior-sample terms in the content task [C]
    d_class_on_fakes: bool = True      # [P] D_V's class loss on v, v~, v_p; False: real only [C]
    curriculum: str = "paper"          # "paper" (3:2, video task) or "code" (stochastic + pred)
    content_probability: float = 0.6   # code curriculum [C]
    video_task_start: float = 0.1      # code curriculum: P(video | motion) ramp [C]
    video_task_end: float = 0.9
    video_task_ramp_steps: int = 150000
    curriculum_seed: int = 0           # seeds the host-side hash of the code curriculum and
                                       # the per-step scheduled-sampling draws
    schedule_start: int = 150000       # scheduled sampling 1 -> 0 and lambda5 ramp [C]
    schedule_end: int = 400000
    pretrain_steps: int = 0            # content-only steps first (SynAction: 300k) [P]
    pretrain_adversarial: bool = False # False: pre-training is the content VAE alone, no D_I
                                       # [P: "image reconstruction task"][C]; True: the full
                                       # content VAE-GAN task [I]
    content_kl_warmup_steps: int = 0   # lambda2 ramps 0 -> lambda2 over steps 0 .. N (SynAction
                                       # pre-training: 100k) [C]; 0: constant
    weight_decay: float = 0.0          # the code's Adam weight_decay (1e-5), coupled L2: each
                                       # phase adds wd/2 * sum w^2 of the weights it updates [C]
    equilibrium: bool = False          # the code's VAE-GAN D/G update gating [C]
    equilibrium_value: float = 0.68
    equilibrium_margin: float = 0.5
    equilibrium_pred_margin: float = 0.4
    code_difference: bool = False      # [C] (x_{t-1} - x_t)/2 real, x^_{t-1} - x^_t generated
    warmup_frames: int = 2             # generated then dropped at test time [P]
    clip_feedback: bool = False        # [I] a generated frame fed back into the rollout (content
                                       # encoder, frame difference) is clipped to [-1, 1], the
                                       # range of real frames and of the output; the code feeds
                                       # back the unnormalised RGB fusion, which can run away
    resolution: int = 64
    num_frames: int = 10
    num_classes: int = 1

    DATA_FIELDS = ("resolution", "num_frames", "num_classes")

    @property
    def base_size(self) -> int:
        return self.resolution // 8

    @property
    def fused_scales(self) -> tuple:
        if self.single_generator:
            return ()
        return tuple(range(NUM_FUSION_SCALES - self.num_scales, NUM_FUSION_SCALES))

    @property
    def motion_steps(self) -> int:
        """eps_m vectors one generated video uses: frames 1 .. T + warm-up - 1."""
        return self.num_frames + self.warmup_frames - 1

    def validate(self) -> "TwoStreamVANConfig":
        if self.resolution < 16 or self.resolution % 16:
            raise ValueError(f"--resolution={self.resolution}: TwoStreamVAN needs a multiple "
                             f"of 16 (four stride-2 stages in each direction)")
        if self.num_frames < 2:
            raise ValueError(f"--num_frames={self.num_frames}: TwoStreamVAN needs >= 2")
        if not 1 <= self.num_scales <= NUM_FUSION_SCALES:
            raise ValueError(f"--model_param num_scales={self.num_scales}: expected 1-4")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"--model_param kernel_size={self.kernel_size}: expected odd >= 1")
        if self.motion_kl_reduction not in ("mean", "sum"):
            raise ValueError(f"--model_param motion_kl_reduction={self.motion_kl_reduction!r}: "
                             f"expected 'mean' or 'sum'")
        if self.curriculum not in ("paper", "code"):
            raise ValueError(f"--model_param curriculum={self.curriculum!r}: expected 'paper' "
                             f"or 'code'")
        if self.conditional and self.num_classes < 2:
            raise ValueError("--model_param conditional=true needs a labelled dataset with at "
                             "least 2 classes")
        for name in ("gf_dim", "content_dim", "motion_dim", "motion_width", "joint_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"--model_param {name}={getattr(self, name)}: expected >= 1")
        for name in ("content_probability", "video_task_start", "video_task_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"--model_param {name}={getattr(self, name)}: expected [0, 1]")
        if self.schedule_end <= self.schedule_start or self.video_task_ramp_steps < 1:
            raise ValueError("--model_param schedule_end must exceed schedule_start and "
                             "video_task_ramp_steps must be >= 1")
        if min(self.pretrain_steps, self.warmup_frames, self.content_kl_warmup_steps) < 0:
            raise ValueError("--model_param pretrain_steps, warmup_frames and "
                             "content_kl_warmup_steps must be >= 0")
        if self.weight_decay < 0:
            raise ValueError(f"--model_param weight_decay={self.weight_decay}: expected >= 0")
        return self
