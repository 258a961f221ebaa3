"""TwoStreamVAN's networks (tfvidgen.models.twostreamvan has the paper, the code and every
choice): the generator side (E_c, E_m, G_c, the motion generator with its kernel sub-nets, and
the autoregressive rollout in TwoStreamVANGenerator) and the discriminators D_I and D_V."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tfvidgen.layers import adaptive_conv, configured, conv, convlstm, recording
from tfvidgen.models.twostreamvan_config import TwoStreamVANConfig

__all__ = ["ContentEncoder", "MotionEncoder", "ContentGenerator", "KernelSubnet",
           "MotionGenerator", "TwoStreamVANGenerator", "ImageDiscriminator", "VideoDiscriminator",
           "frame_difference", "video_discriminator_plan"]

#: G_m trunk widths and how many channels of each block feed that scale's kernel sub-net [C]
_TRUNK = ((128, 32), (64, 22), (32, 16), (16, 16))


def _xavier():
    """Xavier-uniform with ReLU gain sqrt(2) [P][C]."""
    return keras.initializers.VarianceScaling(2.0, "fan_avg", "uniform")


def _gaussian_head(dim: int) -> tuple:
    """The (mu, logvar) Dense pair of a VAE encoder, float32 (the KL and the sampling)."""
    return tuple(keras.layers.Dense(dim, dtype="float32", kernel_initializer=_xavier(), name=name)
                 for name in ("mu", "logvar"))


def _with_label(x, labels, cfg):
    if not cfg.conditional:
        return x
    return tf.concat([x, tf.one_hot(labels, cfg.num_classes, dtype=x.dtype)], axis=-1)


def _f32(x):
    return tf.cast(x, tf.float32)


# ---- generator-side networks -------------------------------------------------------------------
# Layers, not Models: export tracks each declared network, and Keras would give a tracked Model
# a default signature calling it with its first positional input only (no labels).
@keras.saving.register_keras_serializable(package="tfvidgen")
class ContentEncoder(keras.layers.Layer):
    """E_c: frames [B, H, W, 3] (+ labels) -> (mu, logvar) [B, C]; no BN, no conv bias [P][C]."""

    def __init__(self, cfg: TwoStreamVANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        g = cfg.gf_dim
        plan = [(g, 2), (g, 1), (2 * g, 2), (2 * g, 1), (g, 2)]
        if cfg.encoder_extra_conv:
            plan = [(g, 1)] + plan
        self.convs = [keras.layers.Conv2D(c, 3, s, "same", use_bias=False, activation="relu",
                                          kernel_initializer=_xavier(), name=f"conv{i}")
                      for i, (c, s) in enumerate(plan)]
        self.fc = keras.layers.Dense(32 * g, activation="relu", kernel_initializer=_xavier(),
                                     name="fc")
        self.mu, self.logvar = _gaussian_head(cfg.content_dim)

    def call(self, frames, labels=None, training=None):
        h = frames
        for layer in self.convs:
            h = layer(h)
        h = self.fc(keras.ops.reshape(h, [-1, math.prod(h.shape[1:])]))
        h = _with_label(h, labels, self.cfg)
        return self.mu(h), self.logvar(h)


@keras.saving.register_keras_serializable(package="tfvidgen")
class MotionEncoder(keras.layers.Layer):
    """E_m: difference maps [B, H, W, 3] (+ labels) -> (diff map [B, b, b, w], mu, logvar [B, M]);
    conv + synchronized BN + ReLU, three max-pools [C]."""

    def __init__(self, cfg: TwoStreamVANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        w = cfg.motion_width
        plan = [(w, 5, False), (w, 5, True), (2 * w, 5, False), (2 * w, 5, True),
                (2 * w, 7, False), (w, 7, True)]
        # No bias before BN (the code has one): BN cancels it, so its gradient is rounding
        # noise, which Adam's normalisation turns into lr-sized steps that differ between 1 and 2
        # replicas (measured 3e-4). 656 parameters at Weizmann size (144 conv + 512 FC biases).
        self.convs = [keras.layers.Conv2D(c, k, padding="same", use_bias=False,
                                          kernel_initializer=_xavier(), name=f"conv{i}")
                      for i, (c, k, _) in enumerate(plan)]
        self.norms = [conv.batch_norm(name=f"bn{i}") for i in range(len(plan))]
        self.pools = [p for _, _, p in plan]
        self.fc = keras.layers.Dense(32 * w, use_bias=False, kernel_initializer=_xavier(),
                                     name="fc")
        self.fc_norm = conv.batch_norm(name="fc_bn")
        self.mu, self.logvar = _gaussian_head(cfg.motion_dim)

    def call(self, diffs, labels=None, training=None):
        h = diffs
        for layer, norm, pool in zip(self.convs, self.norms, self.pools):
            h = keras.ops.relu(norm(layer(h), training=training))
            if pool:
                h = keras.ops.max_pool(h, 2, 2)
        diff_map = h
        h = keras.ops.relu(self.fc_norm(self.fc(keras.ops.reshape(h, [-1, math.prod(h.shape[1:])])),
                                        training=training))
        h = _with_label(h, labels, self.cfg)
        return diff_map, self.mu(h), self.logvar(h)


@keras.saving.register_keras_serializable(package="tfvidgen")
class ContentGenerator(keras.layers.Layer):
    """G_c: [z_c, one-hot k] -> FC1 (h_fc1) -> FC2 -> base map -> transposed convs -> RGB, with
    optional fusion at the four scales (base map, x2, x4, RGB output); no BN, no conv bias
    [P][C]."""

    def __init__(self, cfg: TwoStreamVANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        g = cfg.gf_dim
        self.fc1 = keras.layers.Dense(32 * g, activation="relu", kernel_initializer=_xavier(),
                                      name="fc1")
        self.fc2 = keras.layers.Dense(cfg.base_size ** 2 * g, activation="relu",
                                      kernel_initializer=_xavier(), name="fc2")
        plan = [(8 * g, 2), (4 * g, 1), (2 * g, 2), (2 * g, 1), (g, 2)]
        # Xavier (ReLU gain) on every layer [P: "Xavier initialization for each layer"]; the code
        # leaves transposed convs at PyTorch's default, which shrinks G_c's output to ~1e-3 at init.
        self.deconvs = [keras.layers.Conv2DTranspose(c, 3, s, "same", use_bias=False,
                                                     activation="relu",
                                                     kernel_initializer=_xavier(),
                                                     name=f"deconv{i}")
                        for i, (c, s) in enumerate(plan)]
        self.to_rgb = keras.layers.Conv2DTranspose(3, 3, 1, "same", use_bias=False,
                                                   dtype="float32",
                                                   kernel_initializer=_xavier(), name="to_rgb")
        #: the motion masks decode() blends with, for inspection: recorded_masks()
        self.mask_recorder = recording.Recorder()

    def recorded_masks(self):
        """Collects, for inspection (tfvidgen.explain), every motion mask this generator blends
        with inside the block: a list of (scale, mask [B, l, l, 1]) in call order. Eager calls
        (an eager tf.while_loop runs its body in Python, so a rollout records every step)."""
        return self.mask_recorder.recording()

    def hidden(self, z_c, labels=None, motion_code=None):
        """h_fc1 [B, 32 ngf] (SGVAN: the motion code joins the input)."""
        x = _with_label(z_c, labels, self.cfg)
        if self.cfg.single_generator:
            if motion_code is None:
                motion_code = tf.zeros([tf.shape(z_c)[0], self.cfg.joint_dim], z_c.dtype)
            x = tf.concat([x, tf.cast(motion_code, x.dtype)], axis=-1)
        return self.fc1(x)

    def decode(self, hidden, kernels=None):
        """(frame [B, H, W, 3], per-scale maps after fusion). kernels: {scale: (w_v, w_h, mask)}."""
        kernels = kernels or {}
        b, g = self.cfg.base_size, self.cfg.gf_dim
        features = []

        def fuse(scale, h):
            if scale in kernels:
                w_v, w_h, mask = kernels[scale]
                if mask is not None:
                    for found in self.mask_recorder.open:
                        found.append((scale, mask))
                h = adaptive_conv.blend(adaptive_conv.adaptive_separable_conv(h, w_v, w_h), h,
                                        mask)
            features.append(h)
            return h

        h = fuse(0, keras.ops.reshape(self.fc2(hidden), [-1, b, b, g]))
        for i, layer in enumerate(self.deconvs):
            h = layer(h)
            if i == 0:
                h = fuse(1, h)
            elif i == 2:
                h = fuse(2, h)
        frame = fuse(3, tf.tanh(self.to_rgb(h)))
        return frame, features

    def call(self, inputs, training=None):
        return self.decode(self.hidden(inputs["z"], inputs.get("label")))[0]


@keras.saving.register_keras_serializable(package="tfvidgen")
class KernelSubnet(keras.layers.Layer):
    """One scale's sub-net of G_m [C]: shared conv-BN-ReLU (16), then the w_v and w_h branches
    (conv-BN-ReLU-conv, n channels each) and the mask branch (conv-BN-ReLU (16)-conv, tanh,
    (m + 1) / 2). The three branches' first conv-BN-ReLU run as ONE conv with their channels
    side by side (convolution and BN are per output channel: the same function, a third of the
    ops to trace and differentiate)."""

    def __init__(self, kernel_size: int, masks: bool, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size, self.masks = kernel_size, masks
        init = _xavier()
        self.shared = conv.ConvBNReLU("conv2d", 16, 3, name="shared")
        self.branches = conv.ConvBNReLU("conv2d", 2 * kernel_size + (16 if masks else 0), 3,
                                        name="branches")
        out = lambda c, name: keras.layers.Conv2D(c, 3, padding="same", dtype="float32",
                                                  kernel_initializer=init, name=name)
        self.v_out, self.h_out = out(kernel_size, "v_out"), out(kernel_size, "h_out")
        self.m_out = out(1, "m_out") if masks else None

    def call(self, x, training=None):
        n = self.kernel_size
        x = self.branches(self.shared(x, training=training), training=training)
        # tf.split, not slices: a slice's gradient is a zero-filled full-size map per slice
        # (StridedSliceGrad, ~25 ms each at 64x64 in bfloat16), split's is one concat.
        parts = tf.split(x, [n, n] + ([x.shape[-1] - 2 * n] if self.m_out is not None else []),
                         axis=-1)
        w_v, w_h = self.v_out(parts[0]), self.h_out(parts[1])
        mask = None
        if self.m_out is not None:
            mask = (tf.tanh(self.m_out(parts[2])) + 1.0) / 2.0
        return w_v, w_h, mask

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "masks": self.masks}


@keras.saving.register_keras_serializable(package="tfvidgen")
class MotionGenerator(keras.layers.Layer):
    """Trajectory FC + ConvLSTM + joint content x motion input + G_m trunk with per-scale kernel
    and mask sub-nets [C]. SGVAN: trajectory + ConvLSTM + FC(e_m) (the motion code) only."""

    def __init__(self, cfg: TwoStreamVANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        b, w = cfg.base_size, cfg.motion_width
        self.trajectory = keras.layers.Dense(b * b * w, activation="relu",
                                             kernel_initializer=_xavier(), name="trajectory")
        self.lstm = convlstm.ConvLSTMCell(w, 3, forget_bias=1.0, kernel_initializer=_xavier(),
                                          name="convlstm")
        self.joint_in = keras.layers.Dense(cfg.joint_dim, activation="relu",
                                           kernel_initializer=_xavier(), name="joint_in")
        self.joint = self.blocks = self.subnets = None
        if not cfg.single_generator:
            # In the policy's dtype, although its kernel (33.6M at Weizmann size, 91% of G) is
            # cast to bfloat16 at every rollout step: float32 here, with no casts, made the
            # Weizmann video step slower (7.06 -> 7.89 s, AMD EPYC with avx512_bf16).
            self.joint = keras.layers.Dense(b * b * w, activation="relu",
                                            kernel_initializer=_xavier(), name="joint")
            self.blocks = []
            for i, (width, _) in enumerate(_TRUNK):
                kernel, stride = (3, 1) if i == 0 else (4, 2)
                self.blocks.append([
                    conv.ConvBNReLU("conv2d_t", width, kernel, stride, name=f"up{i}"),
                    conv.ConvBNReLU("conv2d", width, 3, name=f"conv{i}")])
            # a list (a dict with int keys cannot be saved), aligned with fused_scales
            self.subnets = [KernelSubnet(cfg.kernel_size, cfg.masks, name=f"kernels{s}")
                            for s in cfg.fused_scales]

    def initial_state(self, batch_size):
        b = self.cfg.base_size
        return self.lstm.initial_state(batch_size, b, b)

    def advance(self, state, diff_map):
        """The persistent state after one realised frame difference (its E_m diff map)."""
        return self.lstm(diff_map, state)[1]

    def embed(self, state, eps_m, labels=None, training=None):
        """e_m [B, b, b, w]: the current motion map through one extra, discarded LSTM step."""
        b, w = self.cfg.base_size, self.cfg.motion_width
        current = keras.ops.reshape(self.trajectory(_with_label(eps_m, labels, self.cfg)),
                                    [-1, b, b, w])
        return self.lstm(current, state)[0]

    def motion_code(self, e_m):
        return self.joint_in(keras.ops.reshape(e_m, [-1, math.prod(e_m.shape[1:])]))

    def kernels(self, e_m, hidden, training=None):
        """{scale: (w_v, w_h, mask)} from e_m and G_c's h_fc1 (outer product join) [C]."""
        b, w = self.cfg.base_size, self.cfg.motion_width
        code = self.motion_code(e_m)
        hidden = tf.cast(hidden, code.dtype)
        outer = tf.reshape(hidden[:, :, None] * code[:, None, :],
                           [-1, hidden.shape[-1] * code.shape[-1]])
        x = keras.ops.reshape(self.joint(outer), [-1, b, b, w])
        out = {}
        for scale, ((_, split), (up, refine)) in enumerate(zip(_TRUNK, self.blocks)):
            x = refine(up(x, training=training), training=training)
            # the first `split` channels feed this scale's sub-net, the rest the next block
            rest = x.shape[-1] - split
            head, x = tf.split(x, [split, rest], axis=-1) if rest else (x, None)
            if scale in self.cfg.fused_scales:
                subnet = self.subnets[self.cfg.fused_scales.index(scale)]
                out[scale] = subnet(head, training=training)
        return out

    def call(self, inputs, training=None):
        state = self.initial_state(tf.shape(inputs["eps_m"])[0])
        e_m = self.embed(state, inputs["eps_m"], inputs.get("label"), training)
        if self.cfg.single_generator:
            return self.motion_code(e_m)
        return self.kernels(e_m, inputs["hidden"], training)


def feedback_frame(frame, cfg):
    """The generated frame as the rollout's next steps see it (clip_feedback [I]): clipped to
    [-1, 1] so that a fusion output beyond the real range cannot feed on itself; the losses and
    D still see the frame unclipped, so their gradients keep pulling it back."""
    return tf.clip_by_value(frame, -1.0, 1.0) if cfg.clip_feedback else frame


def frame_difference(previous, current, cfg, generated: bool):
    """Paper: x_t - x_{t-1}; code: (x_{t-1} - x_t) / 2 for real, x^_{t-1} - x^_t generated [C]."""
    if not cfg.code_difference:
        return current - previous
    return (previous - current) if generated else (previous - current) / 2.0


@keras.saving.register_keras_serializable(package="tfvidgen")
class TwoStreamVANGenerator(configured.ConfiguredModel):
    """All generator-side networks (E_c, E_m, G_c, motion generator) and the autoregressive
    rollout. latents {z_content [B, C], z_motion [B, S, M](, label [B])} -> video
    [B, S + 1 - warmup_frames, H, W, 3] in [-1, 1]."""

    CONFIG = TwoStreamVANConfig

    def __init__(self, cfg: TwoStreamVANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg.validate()
        self.content_encoder = ContentEncoder(cfg, name="content_encoder")
        self.motion_encoder = MotionEncoder(cfg, name="motion_encoder")
        self.content_generator = ContentGenerator(cfg, name="content_generator")
        self.motion_generator = MotionGenerator(cfg, name="motion_generator")

    # -- one frame --
    def content_frame(self, z_c, labels=None, training=None):
        """(frame, per-scale maps) of the content stream alone (no fusion)."""
        return self.content_generator.decode(self.content_generator.hidden(z_c, labels))

    def next_frame(self, z_c, state, eps_m, labels=None, training=None):
        """(frame, per-scale maps after fusion) from the previous frame's content code, the
        motion history state and this step's eps_m."""
        cg, mg = self.content_generator, self.motion_generator
        e_m = mg.embed(state, eps_m, labels, training)
        if self.cfg.single_generator:
            return cg.decode(cg.hidden(z_c, labels, mg.motion_code(e_m)))
        hidden = cg.hidden(z_c, labels)
        return cg.decode(hidden, mg.kernels(e_m, hidden, training))

    def content_mean(self, frames, labels=None, training=None):
        return self.content_encoder(frames, labels, training=training)[0]

    # -- test-time rollout --
    def rollout(self, z_c, labels, motion_at, steps, training=False):
        """Frames [B, steps + 1, H, W, 3]: frame 0 from z_c, then `steps` predicted frames with
        eps_m = motion_at(i) (i = 0 .. steps - 1); `steps` may be a tensor (tf.while_loop)."""
        first, _ = self.content_frame(z_c, labels, training)
        first = _f32(first)
        c, h = self.motion_generator.initial_state(tf.shape(z_c)[0])
        frames = tf.TensorArray(tf.float32, size=steps + 1, element_shape=first.shape)
        frames = frames.write(0, first)

        def body(t, previous, before, c, h, frames):
            z_prev = self.content_mean(previous, labels, training)
            diff = frame_difference(before, previous, self.cfg, generated=True)
            diff_map = self.motion_encoder(diff, labels, training=training)[0]
            advanced_c, advanced_h = self.motion_generator.advance((c, h), diff_map)
            # History is the differences of realised frames: none before the second frame.
            has_history = t >= 2
            c = tf.where(has_history, advanced_c, c)
            h = tf.where(has_history, advanced_h, h)
            frame, _ = self.next_frame(z_prev, (c, h), motion_at(t - 1), labels, training)
            frame = _f32(frame)
            return t + 1, feedback_frame(frame, self.cfg), previous, c, h, frames.write(t, frame)

        *_, frames = tf.while_loop(lambda t, *_: t <= steps, body,
                                   (tf.constant(1), first, first, c, h, frames))
        return tf.transpose(frames.stack(), [1, 0, 2, 3, 4])

    def call(self, latents, training=None):
        z_motion = latents["z_motion"]
        steps = z_motion.shape[1] if z_motion.shape[1] is not None else tf.shape(z_motion)[1]
        frames = self.rollout(latents["z_content"], latents.get("label"),
                              lambda i: tf.gather(z_motion, i, axis=1), steps,
                              training=bool(training))
        return tf.clip_by_value(frames[:, self.cfg.warmup_frames:], -1.0, 1.0)


# ---- discriminators ----------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="tfvidgen")
class ImageDiscriminator(configured.ConfiguredModel):
    """D_I: frames [B, H, W, 3] -> patch logits [B, res/16, res/16] [C] (no bias)."""

    CONFIG = TwoStreamVANConfig

    def __init__(self, cfg: TwoStreamVANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        self.convs = [keras.layers.Conv2D(c, 4, 2, "same", use_bias=False,
                                          kernel_initializer=_xavier(), name=f"conv{i}")
                      for i, c in enumerate((16, 32, 64))]
        self.norms = [None, conv.batch_norm(name="bn1"), conv.batch_norm(name="bn2")]
        self.head = keras.layers.Conv2D(1, 4, 2, "same", use_bias=False, dtype="float32",
                                        kernel_initializer=_xavier(), name="head")

    def call(self, frames, training=None):
        h = conv.lrelu_stack(frames, self.convs, self.norms, training)[-1]
        return self.head(h)[..., 0]


def video_discriminator_plan(num_frames: int) -> list:
    """(temporal kernel, pad before, pad after) of D_V's five 3D convs: the code's paddings
    (0, 0, 1, 1) for T = 10 with kernels shrunk to fit short clips, and a head whose padding or
    kernel brings T to 1 [C for T=10, I otherwise]."""
    plan, frames = [], num_frames
    for pad in (0, 0, 1, 1):
        kernel = min(4, frames + 2 * pad)
        plan.append((kernel, pad, pad))
        frames = frames + 2 * pad - kernel + 1
    if frames <= 4:
        total = 4 - frames
        plan.append((4, total // 2 + total % 2, total // 2))
    else:
        plan.append((frames, 0, 0))
    return plan


@keras.saving.register_keras_serializable(package="tfvidgen")
class VideoDiscriminator(configured.ConfiguredModel):
    """D_V: videos [B, T, H, W, 3] -> (logits [B], class logits [B, K] or None); 3D convs 4x4x4,
    no bias, BN, LeakyReLU 0.2, widths 64-128-256-512, head 1 + K [P][C]."""

    CONFIG = TwoStreamVANConfig

    def __init__(self, cfg: TwoStreamVANConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        plan = video_discriminator_plan(cfg.num_frames)
        self.pads, self.convs, self.norms = [], [], []
        for i, ((kt, before, after), width) in enumerate(zip(plan, (64, 128, 256, 512))):
            self.pads.append(((before, after), (1, 1), (1, 1)))
            self.convs.append(keras.layers.Conv3D(width, (kt, 4, 4), (1, 2, 2), "valid",
                                                  use_bias=False, kernel_initializer=_xavier(),
                                                  name=f"conv{i}"))
            self.norms.append(conv.batch_norm(name=f"bn{i}") if i else None)
        kt, before, after = plan[-1]
        self.head_pad = ((before, after), (0, 0), (0, 0))
        spatial = cfg.resolution // 16
        outputs = 1 + (cfg.num_classes if cfg.conditional else 0)
        self.head = keras.layers.Conv3D(outputs, (kt, spatial, spatial), 1, "valid",
                                        use_bias=False, dtype="float32",
                                        kernel_initializer=_xavier(), name="head")

    def call(self, videos, training=None):
        h = videos
        for pad, layer, norm in zip(self.pads, self.convs, self.norms):
            h = layer(tf.pad(h, [(0, 0), *pad, (0, 0)]))
            h = conv.lrelu(norm(h, training=training) if norm is not None else h)
        out = tf.reshape(self.head(tf.pad(h, [(0, 0), *self.head_pad, (0, 0)])),
                         [-1, self.head.filters])
        return out[:, 0], (out[:, 1:] if self.cfg.conditional else None)

