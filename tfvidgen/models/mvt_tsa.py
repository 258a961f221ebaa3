"""MVT / MVT-TSA: Multi-Variate Temporal GAN with temporal shift (Munoz, Zolfaghari, Argus, Brox;
"Temporal Shift GAN for Large Scale Video Generation", WACV 2021, arXiv:2004.01823). Official
PyTorch code: amunozgarza/tsb-gan. [P] paper, [C] code, [I] ours.

Generator (one keras.Model, `generator`):
- Z_ABC = [Z_A, Z_B, Z_C], dims (20, 20, 80), sigmas (0.5, 1, 2) (MVT-VAR/TSA) or all 1 (plain
  MVT) [P]. The declared input `z` is the STANDARDISED latent (N(0, I), like every tfvidgen
  latent, so seeds, serving bounds and interpolation work as for other models); the generator
  multiplies it by the sigmas first, so the prior it samples is exactly N(0, diag(sigma^2)) at
  training and at test time. Order [A, B, C] [P] (the code's [A, C, B] is a permutation, the same
  distribution).
- Sequence generator: SN-linear d -> d, then a GRU cell (`gru_units`, 2048 [P]; reset_after=True
  = PyTorch's GRU; Xavier-uniform weights, biases 0 [C]: the code's update-gate bias of 1 is
  never set, as its name test 'gru.bias_ih_l' does not match GRUCell's 'gru.bias_ih', so its
  biases take the zeros of the catch-all branch) unrolled T steps
  AUTOREGRESSIVELY from a zero state: step 1 reads the FC output, o_t = SN-linear(h_t) -> d is
  the input of step t+1 [C]. Output normalisation: BN without affine on the o_t [C]; here one
  synchronized BN over all B*T codes [I] (the code calls one BN module per step, i.e. per-step
  batch statistics over micro-batches of 6 videos; pooled statistics are what its running stats
  estimate and do not degenerate at 1-2 videos per replica). The GRU runs past the trained length
  at serving (`sample_frames` endpoint, generate(..., num_frames=N)).
- Per frame Z_F = [code_t ; e(y)], e an SN class embedding (120-d) [P][C].
- Frame generator: BigGAN ResNet (tfvidgen.layers.biggan) on the B*T frames (videos contiguous):
  SN-linear -> 4x4 (3x3 at 96) x 16ch, residual up-blocks with conditional BN (gain 1 + SN-linear
  of the FULL Z_F) [C], self-attention after the block whose output is nearest in size to
  `attention_resolution` (32 [C]; log scale, the first on a tie; a size more than a factor of 2
  away is refused), BN, ReLU, SN-conv3x3, tanh. At powers of two that is the code's 32 x 32; at
  96 (3 x 3 start [P]) it is 24 x 24 after the third block, where the code's 128 layout has it
  [I]. Blocks halve channels from 16ch: 4 blocks at 64 (spec's adaptation [I]), 5 at 96 and
  128 [C].
  The first `temporal_blocks` blocks (2 = MVT-TSA [P]; 0 = MVT) begin with the temporal shift
  (fold_div 3 [C]); the shifted input feeds both the residual and the skip path (the code's
  forward pass; spec 2.3).
Discriminators [P][C], both class-conditional by projection (sum-pooled, spectrally normalised
embedding): D_Image, a BigGAN ResNet D on `image_frames` frames per video drawn uniformly WITH
replacement (8 [C]; paper: 8 on UCF-101, 4 on Weizmann/Jester), each with its video's label;
self-attention by the same nearest-size rule (32 x 32 at 64 and 128, 24 x 24 at 96). A block's
skip is a learned 1x1 conv only when it downsamples or changes the channel count, the identity
otherwise [C]: at 96 and 128 the last block's (16ch -> 16ch, no downsampling; 64's widens from
8ch). The code builds that unused 1x1 conv too; its forward never calls it (its D_Image count,
39.59M at ch 64, includes those 1.05M weights). D_Video:
4 SN Conv3D k4 s2 (no bias; BN after 2-4; LReLU 0.2), sum pool, projection. T is halved while
> 1 ("same" padding = the code's padding 1 at 16 frames), so any num_frames works.
Training: hinge losses, L_G = -D_Image - D_Video (equal weights) [C]; fake labels drawn uniformly,
independently of the real batch [C]; fresh latents for every D step and for the G step [C].
Two-time-scale rates G 5e-5 / D 2e-4 [P] and Adam betas (0, 0.9) [C] are TrainConfig flags
(--g_lr/--d_lr/--beta1/--beta2; the configs set them). `d_steps` D updates per G update on
FRESH real batches (1 by default; the code's run script uses 2: `--model_param d_steps=2`),
through real_batches_per_step(). The code's separate Adams for GRU and G (same lr) and for the
two Ds are one G and one D Adam here (Adam is per-parameter: identical updates).
Auxiliary classifier [I] (`aux_classifier_weight` w > 0; 0 = the paper): D_Video's head also
predicts the class from its pooled features (an SN-linear to K logits, AC-GAN, Odena et al.
2017). D adds w * CE(class of REAL videos) (the classifier learns actions from real data only),
G adds w * CE(D_Video's class of its fakes, the requested label). Why: with projection alone,
D's label term stays small next to its real/fake term at this scale (trained quickstart: 0.13
logit between a real video's true and a wrong label against a 3.8 real-fake gap on D_Image), and
a new label moved G's videos by 6% of what new latents did (evaluate's label_effect 0.061). At
this scale it did not help (tfvidgen/models/RESULTS.md): w = 5 makes the label matter as textures.
Motion constraint (MVT-MC) [P]: `motion_weight` alpha > 0 adds alpha * (1 - L_M) to G's loss,
L_M the mean cosine similarity between the flattened optical flows of generated and real videos
over the (fake, real) pairs with the same label. Flow: tfvidgen.layers.flow.horn_schunck
(differentiable, in TF) instead of the paper's pretrained PWC-Net (no weights here) [I]. When the
constraint is on, the G step's fakes take the real batch's labels [I], so every fake has a
same-class real video to compare with (independent labels rarely match with many classes).
G's biases [C] where they count, none [I] where they do not (the code has them all): a
per-channel bias whose output reaches a BN with nothing between gets only round-off gradients,
which Adam turns into full-size steps (measured: 1 vs 2 replicas drifted by 4e-5 through them
after one step), so the conv1s have none, nor the conv2 and skip of a block whose output no
shift reads. Kept: fc0's (one per unit, i.e. per position and channel: BN removes only its
channel means) and the conv2 and skip biases of each block followed by a temporal block (zero
padding at the clip borders stops the BN from cancelling a shifted constant). Measured at
32 x 32, T = 8, g_channels 4, init, loss mean(video * noise): max |dL/db| of block0's conv2 bias
1.9e-4 with temporal_blocks=2 (its channels the shift leaves in place: 3.6e-10), 3.9e-10 for the
same constant with 0; fc0's bias 3.6e-4 with 2, 3.0e-4 with 0. Also without: the block before
self-attention (when no shift follows), whose bias reaches the BN through sigma * o(...) besides
the identity: round-off only at initialisation (sigma = 0), growing with sigma.
In the G step the discriminators run without updating any state (spectral-norm vectors, BN
moving statistics), but D_Video's BN normalises with batch statistics as in the code's
train-mode forward [C].
Not built: the ImageNet BigGAN warm start itself (no weights here; `--init_from` loads a
user-provided checkpoint), gradient accumulation (8 micro-batches of 6 [C]), instance noise (off
in the code), the inference script's quirks (fold_div 4, shifted latent means).
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from tfvidgen import losses
from tfvidgen.config import TrainConfig
from tfvidgen.layers import biggan, configured, conv, flow, noise
from tfvidgen.layers import spectral_norm as sn
from tfvidgen.models import base

__all__ = ["MVTConfig", "MVTGenerator", "MVTImageDiscriminator", "MVTVideoDiscriminator",
           "MVTTSA", "motion_similarity", "sampled_frames"]

_SALT_Z = 1
_SALT_D_Z, _SALT_D_LABEL, _SALT_G_Z, _SALT_G_LABEL = 11, 12, 13, 14
_SALT_REAL_FRAMES, _SALT_FAKE_FRAMES = 15, 16


@dataclasses.dataclass(frozen=True)
class MVTConfig:
    """MVT-TSA hyper-parameters (paper defaults); resolution/num_frames/num_classes come from data."""

    conditional: bool = True           # class-conditional [P]; false: no embedding, no projection
    z_a_dim: int = 20                  # dims of Z_A, Z_B, Z_C [P]
    z_b_dim: int = 20
    z_c_dim: int = 80
    sigma_a: float = 0.5               # std of Z_A, Z_B, Z_C: MVT-VAR/TSA (0.5, 1, 2); MVT all 1 [P]
    sigma_b: float = 1.0
    sigma_c: float = 2.0
    gru_units: int = 2048              # GRU hidden size [P]
    class_dim: int = 120               # class embedding size [P][C]
    g_channels: int = 64               # ch of G (16ch at 4x4); the run script uses 96 [C]
    d_channels: int = 64               # ch of both discriminators
    temporal_blocks: int = 2           # first G blocks with temporal shift: 2 MVT-TSA, 0 MVT [P]
    fold_div: int = 3                  # TSM shifts C // fold_div channels each way (3 in training [C])
    attention_resolution: int = 32     # G/D_Image self-attention at the nearest size [C]; 0: none
    image_frames: int = 8              # N frames per video for D_Image (8 [C]; 4 Weizmann/Jester [P])
    d_steps: int = 1                   # D updates per G update, fresh real batches; 2 in the code
    motion_weight: float = 0.0         # alpha of the motion constraint (MVT-MC: 1) [P]
    aux_classifier_weight: float = 0.0  # AC-GAN class loss on D_Video (0: the paper's) [I]
    flow_levels: int = 3               # Horn-Schunck pyramid levels of the motion constraint
    flow_iterations: int = 20          # Horn-Schunck Jacobi iterations per level
    resolution: int = 64
    num_frames: int = 16
    num_classes: int = 1

    DATA_FIELDS = ("resolution", "num_frames", "num_classes")

    @property
    def z_dim(self) -> int:
        return self.z_a_dim + self.z_b_dim + self.z_c_dim

    @property
    def base_size(self) -> int:
        """Spatial size of G's first map / D_Image's last: 4, or 3 for 96 = 3 * 2^5 (paper)."""
        return 3 if self.resolution % 3 == 0 else 4

    @property
    def num_blocks(self) -> int:
        """Up-blocks of G = downsampling blocks of D_Image."""
        return int(round(math.log2(self.resolution / self.base_size)))

    def validate(self) -> "MVTConfig":
        if self.base_size * 2 ** self.num_blocks != self.resolution or self.num_blocks < 2:
            raise ValueError(f"--resolution={self.resolution}: MVT needs 4 * 2^k or 3 * 2^k "
                             f"(k >= 2), e.g. 16, 64, 96, 128")
        if self.conditional and self.num_classes < 2:
            raise ValueError("--model_param conditional=true (MVT is class-conditional) needs a "
                             "labelled dataset with at least 2 classes; set conditional=false "
                             "for unlabelled data")
        for name in ("z_a_dim", "z_b_dim", "z_c_dim", "gru_units", "class_dim", "g_channels",
                     "d_channels", "fold_div", "image_frames", "d_steps", "flow_levels",
                     "flow_iterations"):
            if getattr(self, name) < 1:
                raise ValueError(f"--model_param {name}={getattr(self, name)}: expected >= 1")
        for name in ("sigma_a", "sigma_b", "sigma_c"):
            if not getattr(self, name) > 0:
                raise ValueError(f"--model_param {name}={getattr(self, name)}: expected > 0")
        if not 0 <= self.temporal_blocks <= self.num_blocks:
            raise ValueError(f"--model_param temporal_blocks={self.temporal_blocks}: expected "
                             f"0..{self.num_blocks} at resolution {self.resolution}")
        if self.attention_resolution < 0:
            raise ValueError(f"--model_param attention_resolution={self.attention_resolution}: "
                             f"expected >= 0 (0: no self-attention)")
        if self.attention_resolution:
            for network, sizes in (("G", self.generator_sizes()),
                                   ("D_Image", self.image_discriminator_sizes())):
                if abs(math.log2(sizes[_nearest(sizes, self.attention_resolution)]
                                 / self.attention_resolution)) >= 1:
                    raise ValueError(
                        f"--model_param attention_resolution={self.attention_resolution}: "
                        f"{network}'s feature maps at resolution {self.resolution} are "
                        f"{', '.join(map(str, sizes))}; none is within a factor of 2 (0: no "
                        f"self-attention)")
        if self.motion_weight < 0:
            raise ValueError(f"--model_param motion_weight={self.motion_weight}: expected >= 0")
        if self.aux_classifier_weight < 0:
            raise ValueError(f"--model_param aux_classifier_weight={self.aux_classifier_weight}: "
                             f"expected >= 0")
        if self.aux_classifier_weight > 0 and not self.conditional:
            raise ValueError("--model_param aux_classifier_weight > 0 needs conditional=true "
                             "(it classifies the requested label)")
        if self.motion_weight > 0 and self.resolution < 2 ** self.flow_levels:
            raise ValueError(f"--model_param flow_levels={self.flow_levels}: too many pyramid "
                             f"levels for resolution {self.resolution}")
        return self

    @property
    def sigmas(self) -> np.ndarray:
        return np.concatenate([np.full(self.z_a_dim, self.sigma_a), np.full(self.z_b_dim,
                               self.sigma_b), np.full(self.z_c_dim, self.sigma_c)]).astype(
                                   np.float32)

    def generator_plan(self) -> list[tuple[int, int]]:
        """(in, out) channels of each G block: 16ch, then halved per block (min ch)."""
        mults = [16] + [max(1, 16 >> i) for i in range(self.num_blocks)]
        return [(self.g_channels * mults[i], self.g_channels * mults[i + 1])
                for i in range(self.num_blocks)]

    def generator_sizes(self) -> list[int]:
        """Spatial size of each G block's output."""
        return [self.base_size * 2 ** (i + 1) for i in range(self.num_blocks)]

    def image_discriminator_sizes(self) -> list[int]:
        """Spatial size of each D_Image block's output."""
        sizes, size = [], self.resolution
        for _, down in self.image_discriminator_plan():
            size //= 2 if down else 1
            sizes.append(size)
        return sizes

    def attention_blocks(self) -> tuple[int, int]:
        """(G block, D_Image block) after which self-attention runs (-1: none): the first block
        whose output size is nearest attention_resolution on a log scale."""
        if not self.attention_resolution:
            return -1, -1
        return (_nearest(self.generator_sizes(), self.attention_resolution),
                _nearest(self.image_discriminator_sizes(), self.attention_resolution))

    def image_discriminator_plan(self) -> list[tuple[int, bool]]:
        """(channels, downsample) of each D_Image block: ch, 2ch, ... (<= 16ch), then 16ch at
        the last size."""
        plan = [(self.d_channels * min(16, 2 ** i), True) for i in range(self.num_blocks)]
        return plan + [(self.d_channels * 16, False)]


def _nearest(sizes, target) -> int:
    """Index of the first size nearest `target` on a log scale."""
    distances = [abs(math.log2(s / target)) for s in sizes]
    return distances.index(min(distances))


class _BatchStatsNorm(keras.layers.BatchNormalization):
    """Synchronized BN (PyTorch defaults) that can normalise with batch statistics WITHOUT
    updating the moving ones: the discriminator as G's step sees it (train-mode forward in the
    code) while the G step changes no discriminator state."""

    def __init__(self, **kwargs):
        super().__init__(synchronized=True, momentum=0.9, epsilon=1e-5, **kwargs)

    def call(self, inputs, training=None, batch_stats=False):
        if training or not batch_stats:
            return super().call(inputs, training=training)
        x = tf.cast(inputs, tf.float32)
        mean, variance = self._moments(x, None)
        out = tf.nn.batch_normalization(x, mean, variance, tf.cast(self.beta, x.dtype),
                                        tf.cast(self.gamma, x.dtype), self.epsilon)
        return tf.cast(out, self.compute_dtype)


@keras.saving.register_keras_serializable(package="tfvidgen")
class MVTGenerator(configured.ConfiguredModel):
    """{z [B, d] ~ N(0, I), label [B] (conditional), optional: num_frames (scalar), label_b [B] and
    label_weight [B] (class interpolation)} -> video [B, T, H, W, 3] in [-1, 1]."""

    CONFIG = MVTConfig

    def __init__(self, cfg: MVTConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg.validate()
        d = cfg.z_dim
        self.fc = sn.SNDense(d, name="seq_fc")
        self.gru = keras.layers.GRUCell(
            cfg.gru_units, reset_after=True, kernel_initializer="glorot_uniform",
            recurrent_initializer="glorot_uniform", bias_initializer="zeros",
            name="seq_gru")
        self.gru_out = sn.SNDense(d, name="seq_out")
        # PyTorch BatchNorm1d(affine=False), momentum 0.1 = Keras 0.9.
        self.seq_norm = conv.batch_norm(center=False, scale=False, name="seq_norm")
        self.class_embed = (biggan.SNEmbedding(cfg.num_classes, cfg.class_dim, name="class_embed")
                            if cfg.conditional else None)
        plan = cfg.generator_plan()
        size = cfg.base_size
        # Per position and channel: BN removes only the channel means of its bias (docstring).
        self.fc0 = sn.SNDense(size * size * plan[0][0], name="fc0")
        self.blocks = []
        for i, (c_in, c_out) in enumerate(plan):
            fold = cfg.fold_div if i < cfg.temporal_blocks else 0
            self.blocks.append(biggan.GeneratorBlock(c_in, c_out, fold,
                                                     output_bias=i + 1 < cfg.temporal_blocks,
                                                     name=f"block{i}"))
        self.attention_after = cfg.attention_blocks()[0]
        self.attention = (biggan.SelfAttention(plan[self.attention_after][1], name="attention")
                          if self.attention_after >= 0 else None)
        # PyTorch momentum 1e-4 = Keras 0.9999 [C].
        self.out_norm = keras.layers.BatchNormalization(synchronized=True, momentum=0.9999,
                                                        epsilon=1e-5, name="out_norm")
        self.to_rgb = sn.SNConv2D(3, 3, padding="same", dtype="float32", name="to_rgb")
        self.built = True       # sublayers build on their first call (no symbolic build trace)

    def scaled_latent(self, z):
        """Z_ABC = sigmas * z: the multivariate prior from a standard-normal z."""
        return tf.cast(z, tf.float32) * tf.constant(self.cfg.sigmas)

    def sequence(self, z_abc, num_frames, training=None):
        """Autoregressive GRU codes [B, T, d] (before the output normalisation)."""
        x = self.fc(z_abc, training=training)
        state = tf.zeros([tf.shape(x)[0], self.cfg.gru_units], x.dtype)

        def step(x, state):
            out, [state] = self.gru(x, [state], training=training)
            return self.gru_out(out, training=training), state

        if isinstance(num_frames, int):         # training / fixed length: unrolled
            codes = []
            for _ in range(num_frames):
                x, state = step(x, state)
                codes.append(x)
            return tf.stack(codes, axis=1)
        # A length given at serving time: a while loop (runs past the trained length).
        array = tf.TensorArray(x.dtype, size=num_frames)

        def body(t, x, state, array):
            x, state = step(x, state)
            return t + 1, x, state, array.write(t, x)

        _, _, _, array = tf.while_loop(lambda t, *_: t < num_frames, body,
                                       (tf.constant(0), x, state, array))
        return tf.transpose(array.stack(), [1, 0, 2])

    def class_vector(self, latents, training=None):
        """e(y) [B, class_dim]; with label_b / label_weight: (1 - w) e(y) + w e(y_b)."""
        e = self.class_embed(latents["label"], training=training)
        if "label_b" in latents:
            w = tf.cast(latents["label_weight"], e.dtype)[:, None]
            e = (1.0 - w) * e + w * self.class_embed(latents["label_b"], training=training)
        return e

    def call(self, latents, training=None):
        num_frames = latents.get("num_frames", self.cfg.num_frames)
        if not isinstance(num_frames, int):
            num_frames = tf.cast(tf.reshape(num_frames, []), tf.int32)
        codes = self.sequence(self.scaled_latent(latents["z"]), num_frames, training)
        codes = tf.reshape(codes, [-1, self.cfg.z_dim])                          # [B*T, d]
        cond = self.seq_norm(codes, training=training)
        if self.class_embed is not None:
            e = tf.repeat(self.class_vector(latents, training), num_frames, axis=0)
            cond = tf.concat([cond, tf.cast(e, cond.dtype)], axis=-1)          # Z_F [B*T, 240]
        size, channels = self.cfg.base_size, self.cfg.generator_plan()[0][0]
        h = tf.reshape(self.fc0(cond, training=training), [-1, size, size, channels])
        for i, block in enumerate(self.blocks):
            h = block(h, cond, num_frames=num_frames, training=training)
            if i == self.attention_after:
                h = self.attention(h, training=training)
        h = tf.nn.relu(self.out_norm(h, training=training))
        frames = tf.tanh(self.to_rgb(h, training=training))
        r = self.cfg.resolution
        return tf.reshape(frames, tf.stack([-1, num_frames, r, r, 3]))


@keras.saving.register_keras_serializable(package="tfvidgen")
class MVTImageDiscriminator(configured.ConfiguredModel):
    """D_Image: frames [N, H, W, 3] (+ labels [N]) -> logits [N] (BigGAN ResNet D, projection)."""

    CONFIG = MVTConfig

    def __init__(self, cfg: MVTConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        self.blocks, in_channels = [], 3
        for i, (channels, down) in enumerate(cfg.image_discriminator_plan()):
            # The code's skip: a 1x1 conv when downsampling or changing width, else identity.
            self.blocks.append(biggan.DiscriminatorBlock(
                channels, down, optimized=(i == 0),
                learnable_skip=down or channels != in_channels, name=f"block{i}"))
            in_channels = channels
        self.attention_after = cfg.attention_blocks()[1]
        self.attention = (biggan.SelfAttention(cfg.image_discriminator_plan()[
            self.attention_after][0], name="attention") if self.attention_after >= 0 else None)
        self.head = biggan.ProjectionHead(cfg.image_discriminator_plan()[-1][0],
                                          cfg.num_classes if cfg.conditional else 0, name="head")
        self.built = True       # sublayers build on their first call (no symbolic build trace)

    def call(self, frames, labels=None, training=None):
        h = frames
        for i, block in enumerate(self.blocks):
            h = block(h, training=training)
            if i == self.attention_after:
                h = self.attention(h, training=training)
        return self.head(h, labels, training=training)


@keras.saving.register_keras_serializable(package="tfvidgen")
class MVTVideoDiscriminator(configured.ConfiguredModel):
    """D_Video: videos [B, T, H, W, 3] (+ labels [B]) -> logits [B] (MoCoGAN-style 3D D,
    projection). batch_stats=True with training=False: BN on batch statistics, no state change."""

    CONFIG = MVTConfig

    def __init__(self, cfg: MVTConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        self.convs, self.norms = [], []
        frames = cfg.num_frames
        for i in range(4):
            kt, st = (4, 2) if frames > 1 else (1, 1)
            self.convs.append(conv.conv_layer("conv3d", cfg.d_channels * 2 ** i, (kt, 4, 4),
                                              (st, 2, 2), "same", True, use_bias=False,
                                              name=f"conv{i}"))
            self.norms.append(_BatchStatsNorm(name=f"bn{i}") if i else None)
            frames = -(-frames // st)
        self.head = biggan.ProjectionHead(
            cfg.d_channels * 8, cfg.num_classes if cfg.conditional else 0, relu=False,
            auxiliary_classes=cfg.num_classes if cfg.aux_classifier_weight > 0 else 0,
            name="head")
        self.built = True       # sublayers build on their first call (no symbolic build trace)

    def call(self, videos, labels=None, training=None, batch_stats=False, with_classes=False):
        """Logits [B]; with_classes=True (aux_classifier_weight > 0): (logits, class logits
        [B, K])."""
        h = videos
        for layer, norm in zip(self.convs, self.norms):
            h = layer(h, training=training)
            if norm is not None:
                h = norm(h, training=training, batch_stats=batch_stats)
            h = conv.lrelu(h)
        return self.head(h, labels, training=training, with_classes=with_classes)


def sampled_frames(videos, seeds, salt: int, count: int):
    """`count` frames per video drawn uniformly with replacement (per-example stateless):
    videos [B, T, H, W, C] -> ([B*count, H, W, C], frame indices [B, count])."""
    index = noise.per_example_indices(seeds, salt, count, tf.shape(videos)[1])
    frames = tf.gather(videos, index, batch_dims=1)                      # [B, count, H, W, C]
    return tf.reshape(frames, tf.concat([[-1], tf.shape(videos)[2:]], axis=0)), index


def video_flows(videos, levels: int, iterations: int):
    """Horn-Schunck flows between consecutive frames, flattened: [B, (T-1)*H*W*2]."""
    shape = tf.shape(videos)
    first = tf.reshape(videos[:, :-1], tf.concat([[-1], shape[2:]], axis=0))
    second = tf.reshape(videos[:, 1:], tf.concat([[-1], shape[2:]], axis=0))
    flows = flow.horn_schunck(first, second, levels=levels, iterations=iterations)
    return tf.reshape(flows, [shape[0], -1])


def motion_similarity(fake_flows, real_flows, fake_labels=None, real_labels=None):
    """L_M: mean cosine similarity of flattened flows over (fake i, real j) pairs with equal
    labels (all pairs when unlabelled); 0 when no pair matches."""
    fake = tf.math.l2_normalize(tf.cast(fake_flows, tf.float32), axis=-1)
    real = tf.math.l2_normalize(tf.cast(real_flows, tf.float32), axis=-1)
    cosine = tf.matmul(fake, real, transpose_b=True)                       # [Bf, Br]
    if fake_labels is None:
        mask = tf.ones_like(cosine)
    else:
        mask = tf.cast(tf.equal(fake_labels[:, None], real_labels[None, :]), tf.float32)
    return tf.reduce_sum(cosine * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


class MVTTSA(base.ImageVideoGAN):
    """Trainable MVT-TSA; see the module docstring for the paper, the code and every departure.

    Phases: d_step, d_steps times (each on its own real batch and fresh fakes), then g_main
    (fresh fakes). real_batches_per_step() = d_steps."""

    Config = MVTConfig
    CAPABILITIES = base.Capabilities(variable_length=True)
    PHASES = {"d_step": "d_optimizer", "g_main": "g_optimizer"}

    def __init__(self, cfg: MVTConfig, train: TrainConfig, **kwargs):
        self.cfg = cfg.validate()
        super().__init__(train, **kwargs)
        # Construction order fixes model.variables' order and the initializers' seeds: keep it.
        self.add_generator(lambda: MVTGenerator(cfg, name="generator"))
        self.image_discriminator = MVTImageDiscriminator(cfg, name="image_discriminator")
        self.video_discriminator = MVTVideoDiscriminator(cfg, name="video_discriminator")

    def phases(self, step: int) -> tuple:
        del step
        return ("d_step",) * self.cfg.d_steps + ("g_main",)

    def inputs(self) -> list:
        declared = [base.Input("z", "noise", (self.cfg.z_dim,), salt=_SALT_Z)]
        if self.cfg.conditional:
            declared.append(base.Input("label", "label", (), "int32",
                                       int_range=(0, self.cfg.num_classes)))
        return declared

    def real_batches_per_step(self) -> int:
        return self.cfg.d_steps

    def build_networks(self) -> None:
        latents = self.sample_inputs(2, 0, labels=tf.zeros([2], tf.int32))
        videos = self.generator(latents)
        if self.ema_generator is not None:
            self.ema_generator(latents)
        labels = latents.get("label")
        self.video_discriminator(videos, labels,
                                 with_classes=self.cfg.aux_classifier_weight > 0)
        self.image_discriminator(videos[:, 0], labels)

    # ---- training ----------------------------------------------------------------------------
    def fake_latents(self, seeds, z_salt: int, label_salt: int) -> dict:
        """Per-example stateless z and (conditional) uniform fake labels."""
        latents = {"z": noise.per_example_normal(seeds, z_salt, self.cfg.z_dim)}
        if self.cfg.conditional:
            latents["label"] = noise.per_example_randint(seeds, label_salt, self.cfg.num_classes)
        return latents

    def phase_context(self, batch) -> dict:
        k = self.cfg.d_steps
        batches = [batch] if k == 1 else [{name: v[i] for name, v in batch.items()}
                                          for i in range(k)]
        return {"batches": batches, "d_steps_run": 0}

    def phase_loss(self, phase, batch, context):
        batches = context["batches"]
        if phase == "g_main":
            return self.generator_losses(batches[-1], context)
        # the i-th d_step of the step (phases run in order, unrolled) takes the i-th batch
        index, context["d_steps_run"] = context["d_steps_run"], context["d_steps_run"] + 1
        return self.discriminator_losses(batches[index], context)

    def _logits(self, videos, seeds, salt, labels, **mode):
        """(D_Video logits, D_Image logits, D_Video's class logits or None)."""
        frames, _ = sampled_frames(videos, seeds, salt, self.cfg.image_frames)
        frame_labels = None if labels is None else tf.repeat(labels, self.cfg.image_frames)
        training = mode.get("training", False)
        image = self.image_discriminator(frames, frame_labels, training=training)
        if self.cfg.aux_classifier_weight > 0:
            video, classes = self.video_discriminator(videos, labels, with_classes=True, **mode)
            return video, image, classes
        return self.video_discriminator(videos, labels, **mode), image, None

    def discriminator_scores(self, videos, labels=None) -> dict:
        """For tfvidgen.explain: D_Video, and D_Image averaged over every frame."""
        if labels is None and self.cfg.conditional:
            labels = tf.zeros([tf.shape(videos)[0]], tf.int32)
        return {"video_discriminator": tf.reshape(tf.cast(self.video_discriminator(
                    videos, labels, training=False), tf.float32), [-1]),
                "image_discriminator": base.frame_scores(self.image_discriminator, videos,
                                                            labels, training=False)}

    def discriminator_losses(self, batch, context):
        """D_Video and D_Image on `batch` (this D step's real batch) and fresh fakes."""
        del context                                 # nothing shared: fresh fakes per D step
        seeds = batch["seed"]
        fake_latents = self.fake_latents(seeds, _SALT_D_Z, _SALT_D_LABEL)
        fakes = tf.stop_gradient(self.generator(fake_latents, training=True))
        real_labels = batch.get("label") if self.cfg.conditional else None
        real_v, real_i, real_classes = self._logits(batch["video"], seeds, _SALT_REAL_FRAMES,
                                                    real_labels, training=True)
        fake_v, fake_i, _ = self._logits(fakes, seeds, _SALT_FAKE_FRAMES,
                                         fake_latents.get("label"), training=True)
        adv_video = losses.hinge_discriminator_loss(real_v, fake_v)
        adv_image = losses.hinge_discriminator_loss(real_i, fake_i)
        total = adv_video + adv_image
        logs = {}
        if real_classes is not None:     # the classifier learns from real videos only
            aux = losses.classification_loss(real_classes, real_labels)
            total += self.cfg.aux_classifier_weight * aux
            logs["d_aux_class"] = aux
        return total, {"d_total": total, "d_adv_video": adv_video, "d_adv_image": adv_image,
                       **logs,
                       "d_real_video": tf.reduce_mean(real_v),
                       "d_fake_video": tf.reduce_mean(fake_v),
                       "d_real_image": tf.reduce_mean(real_i),
                       "d_fake_image": tf.reduce_mean(fake_i)}

    def generator_losses(self, batch, context):
        """G on fresh fakes through both Ds (+ the motion constraint against `batch`)."""
        del context
        seeds = batch["seed"]
        latents = self.fake_latents(seeds, _SALT_G_Z, _SALT_G_LABEL)
        motion = self.cfg.motion_weight > 0
        if motion and self.cfg.conditional:
            latents["label"] = tf.cast(batch["label"], tf.int32)
        fakes = self.generator(latents, training=True)
        # Ds change no state here (SN vectors, BN moving stats); D_Video's BN on batch stats.
        fake_v, fake_i, fake_classes = self._logits(fakes, seeds, _SALT_FAKE_FRAMES,
                                                    latents.get("label"), training=False,
                                                    batch_stats=True)
        adv_video = losses.hinge_generator_loss(fake_v)
        adv_image = losses.hinge_generator_loss(fake_i)
        total = adv_video + adv_image
        logs = {"g_adv_video": adv_video, "g_adv_image": adv_image}
        if fake_classes is not None:
            aux = losses.classification_loss(fake_classes, latents["label"])
            total += self.cfg.aux_classifier_weight * aux
            logs["g_aux_class"] = aux
        if motion:
            levels, iterations = self.cfg.flow_levels, self.cfg.flow_iterations
            labels = latents.get("label")
            similarity = motion_similarity(
                video_flows(fakes, levels, iterations),
                tf.stop_gradient(video_flows(batch["video"], levels, iterations)),
                labels, None if labels is None else tf.cast(batch["label"], tf.int32))
            total += self.cfg.motion_weight * (1.0 - similarity)
            logs["g_motion_similarity"] = similarity
        return total, {"g_total": total, **logs}

    # ---- generation and serving ----------------------------------------------------------
    def run_generator(self, generator, inputs, training, num_frames=None):
        """num_frames: the GRU runs that many steps (past the trained length too)."""
        if num_frames is not None:     # a tensor: Keras takes no Python values among inputs
            inputs = {**inputs, "num_frames": tf.convert_to_tensor(num_frames, tf.int32)}
        return generator(inputs, training=training)

    def extra_endpoints(self) -> dict:
        """label_mix (conditional only): z, label, label_b, label_weight float [B] in [0, 1] ->
        the video of the class embedding (1 - w) e(label) + w e(label_b) (paper Fig. 8)."""
        if not self.cfg.conditional:
            return {}
        inputs = [*sorted(self.inputs(), key=lambda i: i.name),
                  base.Input("label_b", "label", (), "int32", int_range=(0, self.cfg.num_classes)),
                  base.Input("label_weight", "control", (), "float32", bound=1.0)]

        def with_mix(inputs):
            weight = inputs["label_weight"]       # the bound gave |w| <= 1; here w >= 0
            with tf.control_dependencies([tf.debugging.assert_greater_equal(
                    weight, 0.0, message="label_weight must be between 0 and 1")]):
                inputs = {**inputs, "label_weight": tf.identity(weight)}
            return self.generate(inputs)

        return {"label_mix": (inputs, with_mix)}
