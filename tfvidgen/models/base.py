"""The VideoGAN contract every tfvidgen model implements, and the one place its update runs.

A model is a keras.Model owning its generator (plus an optional EMA copy) and discriminator(s).
Subclasses provide:
  make_generator()                      -> keras.Model taking a latents dict, returning [B,T,H,W,3]
  d_variables                           -> discriminator variables the D optimizer updates
  latents_from_seeds(seeds, labels)     -> latents dict from per-example int64[2] keys (stateless)
  latent_specs()                        -> {name: tf.TensorSpec} of the latents (serving inputs)
  discriminator_losses(batch, fakes, latents) -> (total, logs)   per-replica means
  generator_losses(batch, fakes, latents)     -> (total, logs)   per-replica means
  build_networks()                      -> create every variable (one dummy forward)
and set `self.cfg`: their config dataclass, with at least `conditional: bool` and
`num_classes: int` (read by sampling, serving and evaluation). They inherit train_step, generate,
sample_inputs, EMA and serving_endpoints.

train_step: one generator forward; D update(s) on the detached fakes; G update on the same fakes
through the updated D (as G3AN's official code does). The tape/scale/apply lines live only in
`_apply`. Losses come back as per-replica means and are divided by the replica count once, there.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfvidgen import distribute
from tfvidgen.config import TrainConfig
from tfvidgen.layers import noise

__all__ = ["VideoGAN"]


class VideoGAN(keras.Model):
    """Base class of the five models; see the module docstring for the contract."""

    #: how many D updates per iteration (all on the same fakes)
    d_steps = 1

    def __init__(self, train: TrainConfig, **kwargs):
        super().__init__(**kwargs)
        self.train_cfg = train
        self.generator = self.make_generator()
        self.ema_generator = self.make_generator() if train.ema_decay > 0 else None
        self.g_optimizer = None
        self.d_optimizer = None

    # ---- subclass hooks ------------------------------------------------------------------
    def make_generator(self) -> keras.Model:
        raise NotImplementedError

    @property
    def d_variables(self) -> list:
        raise NotImplementedError

    def latents_from_seeds(self, seeds, labels=None) -> dict:
        raise NotImplementedError

    def latent_specs(self) -> dict:
        raise NotImplementedError

    def discriminator_losses(self, batch, fakes, latents):
        raise NotImplementedError

    def generator_losses(self, batch, fakes, latents):
        raise NotImplementedError

    def build_networks(self) -> None:
        raise NotImplementedError

    # ---- shared behaviour ----------------------------------------------------------------
    @property
    def g_variables(self) -> list:
        return self.generator.trainable_variables

    def compile(self, g_optimizer, d_optimizer):
        """Takes the two optimizers and nothing else; builds their slots for resumable checkpoints."""
        super().compile()
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        self.build_networks()
        if self.ema_generator is not None:
            self.ema_generator.set_weights(self.generator.get_weights())
        g_optimizer.build(self.g_variables)
        d_optimizer.build(self.d_variables)

    def call(self, latents, training=False):
        return self.generate(latents, training=training)

    def generate(self, latents: dict, training: bool = False, use_ema: bool = True):
        """Video [B, T, H, W, 3] in [-1, 1] (EMA generator when enabled and use_ema)."""
        generator = self.sampling_generator if use_ema else self.generator
        return generator(latents, training=training)

    @property
    def sampling_generator(self) -> keras.Model:
        return self.ema_generator if self.ema_generator is not None else self.generator

    def sample_inputs(self, batch_size: int, seed: int, labels=None) -> dict:
        """Latents of samples seed, seed+1, ..., seed+batch_size-1 (stateless, reproducible;
        sample i equals what the serving `sample` endpoint returns for seed + i)."""
        seeds = tf.range(batch_size, dtype=tf.int64) + tf.cast(seed, tf.int64)
        return self.latents_from_seeds(noise.seeds_from_ints(seeds), labels)

    def latents_for_batch(self, batch) -> dict:
        return self.latents_from_seeds(batch["seed"], batch.get("label"))

    def train_step(self, batch):
        """One iteration on a per-replica batch; returns per-replica logs (scalars)."""
        latents = self.latents_for_batch(batch)
        with tf.GradientTape() as g_tape:
            fakes = self.generator(latents, training=True)
        # D updates happen outside g_tape (tape.stop_recording would pause the D tape too).
        detached = tf.stop_gradient(fakes)
        for _ in range(self.d_steps):              # Python int: unrolled when traced
            d_logs = self.update_discriminator(batch, detached, latents)
        with g_tape:                               # re-entered: G's loss through the updated D
            g_total, g_logs = self.generator_losses(batch, fakes, latents)
        self._apply(g_tape, g_total, self.g_variables, self.g_optimizer)
        return {**d_logs, **g_logs}

    def update_discriminator(self, batch, fakes, latents) -> dict:
        with tf.GradientTape() as tape:
            total, logs = self.discriminator_losses(batch, fakes, latents)
        self._apply(tape, total, self.d_variables, self.d_optimizer)
        return logs

    def update_generator(self, batch, latents) -> dict:
        with tf.GradientTape() as tape:
            fakes = self.generator(latents, training=True)
            total, logs = self.generator_losses(batch, fakes, latents)
        self._apply(tape, total, self.g_variables, self.g_optimizer)
        return logs

    @staticmethod
    def _apply(tape, total, variables, optimizer) -> None:
        # The optimizer SUMS gradients over replicas: differentiate mean / num_replicas. The
        # division must be recorded, so it runs on the (re-entered) tape.
        with tape:
            scaled = distribute.scale_for_replicas(total)
        grads = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(grads, variables))

    def update_ema(self) -> None:
        """EMA of generator weights; call in cross-replica context after each step."""
        if self.ema_generator is None:
            return
        decay = self.train_cfg.ema_decay
        for source, target in zip(self.generator.weights, self.ema_generator.weights):
            if source.trainable:
                target.assign(decay * target + (1.0 - decay) * source)
            else:                       # BN statistics, spectral-norm vectors: copy
                target.assign(source)

    def checkpoint_items(self) -> dict:
        """Every variable of the model, by role, in construction order, for tf.train.Checkpoint.

        Why not `Checkpoint(model=self)`: Keras 3 keeps layers held in Python lists in its own
        TrackedList, which TF's object graph does not follow, so e.g. BN statistics of such layers
        would silently be left out. Explicit ordered lists cover every variable.
        """
        generator = list(self.generator.variables)
        ema = list(self.ema_generator.variables) if self.ema_generator is not None else []
        taken = {id(v) for v in generator + ema}
        items = {"generator": generator,
                 "discriminators": [v for v in self.variables if id(v) not in taken]}
        if ema:
            items["ema_generator"] = ema
        return items

    # ---- serving ----------------------------------------------------------------------------
    #: largest batch a serving request may ask for (guards the server against absurd requests)
    max_serving_batch = 256
    #: largest |value| a serving latent may have. Latents are N(0, 1): |z| > 10 has probability
    #: ~1e-23, so 1e4 leaves room for anything a client can mean (interpolation, extrapolation,
    #: truncation) and refuses garbage, which would overflow the generator instead: a 1e30 latent
    #: drives its activations to inf, normalisation turns them into NaN, and the uint8 cast made
    #: that an all-black video.
    max_serving_latent = 1e4

    def serving_endpoints(self) -> dict:
        """{name: (function, input_signature)} that export.py writes into the SavedModel.

        serving_default: the latents of latent_specs() -> {"video": uint8 [B, T, H, W, 3]}
        sample:          seed int64 [B] (+ label) -> the same, drawn in-graph with stateless RNG
        latents:         seed int64 [B] (+ label) -> the latents `sample` uses for those seeds,
                         so clients can fix, mix or interpolate them and call serving_default

        Inputs are checked in the graph (core ops only, so any TF Serving runs the checks) and
        a bad one answers InvalidArgument naming it, never a video: its shape (rank and width),
        one batch size in [1, max_serving_batch] across the inputs, labels in [0, num_classes),
        latents finite with |value| <= max_serving_latent. The signatures therefore declare no
        shapes (TensorSpec(None)): the runtime does not enforce a declared shape, and a wrong
        rank used to fail deep inside the graph with an error that named no input.
        """
        specs = self.latent_specs()
        names = sorted(specs)
        generator = self.sampling_generator
        seed_shapes = {"seed": tf.TensorShape([None])}
        if "label" in specs:
            seed_shapes["label"] = specs["label"].shape

        def video_output(video):
            # The inputs are checked; this is the last guard: NaN cast to uint8 is 0, so a
            # generator that overflowed anyway would answer with a plausible black video.
            video = tf.debugging.assert_all_finite(tf.cast(video, tf.float32),
                                                   "the generated video is not finite")
            video = tf.clip_by_value(video, -1.0, 1.0)
            return {"video": tf.cast(tf.round((video + 1.0) * 127.5), tf.uint8)}

        def from_latents(*args):
            latents = self._checked_serving_inputs(dict(zip(names, args)),
                                                   {n: specs[n].shape for n in names})
            return video_output(generator(latents, training=False))

        def latents(*args):
            inputs = self._checked_serving_inputs(dict(zip(seed_shapes, args)), seed_shapes)
            return self.latents_from_seeds(noise.seeds_from_ints(inputs["seed"]),
                                           inputs.get("label"))

        def from_seeds(*args):
            return video_output(generator(latents(*args), training=False))

        latent_signature = [tf.TensorSpec(None, specs[n].dtype, name=n) for n in names]
        seed_signature = [tf.TensorSpec(None, tf.int64, name="seed")]
        if "label" in specs:
            seed_signature.append(tf.TensorSpec(None, specs["label"].dtype, name="label"))
        return {"serving_default": (from_latents, latent_signature),
                "sample": (from_seeds, seed_signature),
                "latents": (latents, seed_signature)}

    def _checked_serving_inputs(self, inputs: dict, shapes: dict) -> dict:
        """`inputs` with their static `shapes`, passed on only once every serving check passed."""
        checked = {}
        for name, value in inputs.items():
            with tf.control_dependencies([_assert_serving_shape(name, value, shapes[name])]):
                checked[name] = tf.ensure_shape(tf.identity(value), shapes[name])
        first, *others = checked
        batch = tf.shape(checked[first])[0]
        deps = [tf.debugging.assert_positive(batch, message="batch must not be empty"),
                tf.debugging.assert_less_equal(batch, self.max_serving_batch, message=(
                    f"batch size must be at most {self.max_serving_batch}"))]
        for name in others:
            deps.append(tf.debugging.assert_equal(tf.shape(checked[name])[0], batch, message=(
                f"{name} must have the same batch size as the other inputs")))
        for name, value in checked.items():
            if name == "label":
                in_range = f"label must be in [0, {self.cfg.num_classes})"
                deps += [tf.debugging.assert_greater_equal(value, 0, message=in_range),
                         tf.debugging.assert_less(value, self.cfg.num_classes, message=in_range)]
            elif value.dtype.is_floating:
                # The bound is tested on CheckNumerics' output, so a NaN or inf is always
                # reported as such (a data dependency orders the two; asserts side by side don't).
                finite = tf.debugging.assert_all_finite(value, f"{name} must be finite")
                largest = tf.reduce_max(tf.abs(finite))
                deps.append(tf.debugging.assert_less_equal(
                    largest, tf.constant(self.max_serving_latent, largest.dtype),
                    message=f"{name} must have |values| <= {self.max_serving_latent:g}"))
        with tf.control_dependencies(deps):
            return {name: tf.identity(value) for name, value in checked.items()}


def _assert_serving_shape(name: str, value, shape: tf.TensorShape):
    """Assert op: `value` has `shape` (None dims: any size), with a message naming the input."""
    actual = tf.shape(value)
    sizes = [-1 if d is None else d for d in shape.as_list()]
    # The rank test guards the size test (which cannot broadcast across ranks). It is a cond
    # because grappler does not fold a cond: when the caller's shapes were known, a plain
    # `rank == r` test was folded and ops after the assert (EnsureShape, MatMul) failed first,
    # with errors that named no input (TF 2.21, signatures called from Python).
    ok = tf.cond(tf.equal(tf.size(actual), len(sizes)),
                 lambda: tf.reduce_all((actual == sizes) | tf.equal(sizes, -1)),
                 lambda: tf.constant(False))
    # Parentheses, not brackets, in the message: one-line error reporters cut the assertion's
    # text at its first "]" (tfvidgen.errors).
    layout = ", ".join("batch" if i == 0 else ("any" if d < 0 else str(d))
                       for i, d in enumerate(sizes))
    return tf.debugging.Assert(ok, [f"{name} must have shape ({layout}), got shape", actual])
