"""The model contract (v2) every tfvidgen model implements, and the one place its updates run.

A model is a keras.Model built from its frozen config `self.cfg` (with `conditional` and
`num_classes`) that DECLARES three things; the base derives everything else from them:

  networks()   {attribute: Network(role, item)}: roles generator, ema (EMA copy of `source`, None
               when EMA is off), encoder, discriminator; `item` is the checkpoint entry holding it.
               Checkpoints, EMA, export tracking and the inference networks read this.
  optimizer_specs()  {checkpoint name: OptimizerSpec(networks, ...)}: what each optimizer updates,
               which TrainConfig rate it uses (logged, re-applied on resume) and how it is made
               (any Keras optimizer; static lr/beta scaling for lazy regularisation).
               ImageVideoGAN declares both for the common generator + image D + video D layout.
  inputs()     [Input(name, role, shape, dtype, salt)]: roles appearance, motion, noise
               (N(0, 1) per example from (seed, salt)), label, image, video, num_frames and
               control (given by the caller).
               Latent specs, seed drawing, serving validation, export metadata and sample
               --fix/--interpolate / evaluation all go by role, never by a name.
  PHASES       {phase: optimizer name}; phases(step) -> the phases of a step, chosen on the host;
               phase_context(batch) -> what the phases of one step share; phase_loss(phase,
               batch, context) -> (total, logs), per-replica means.
  TRAINING_DATA  "clips" (default) or "triples" (data.pipeline.make_triples_dataset).
  real_batches_per_step()  how many real batches one step consumes (default 1). Above 1, every
               entry of `batch` has a leading axis of that size ([k, B, ...]): k disjoint,
               consecutive batches of the data stream (e.g. MVT's D steps on fresh batches).

train_step(batch, phases) runs the phases in order, each through run_phase/_apply (the one
tape/scale/apply). train_lib traces one function per distinct phase tuple: nothing is chosen by
tf.cond, which fails around apply_gradients under MirroredStrategy, and an optimizer whose phase
did not run is not touched (a loss times 0 would still move Adam's weights). `self.step` (int64,
checkpointed as "step") counts finished steps and is readable in-graph (ramps, warm-ups).
generate(inputs) -> video [B, T, H, W, 3] in [-1, 1]; serving_endpoints() are built from the
declared inputs with this module's shared helpers (extra endpoints declare their inputs in
endpoint_inputs()). For `tfvidgen.explain`: discriminator_scores(videos, labels) and
explain_views() (model-specific maps). Build a model with tfvidgen.models.build.
Two names are fixed: the main generator is the attribute `generator` (sampling and EMA use it),
and the model's frozen Config takes `resolution`, `num_frames` and `num_classes` (its
DATA_FIELDS) and has `validate()`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import keras
import tensorflow as tf

from tfvidgen import distribute, pixels
from tfvidgen.config import TrainConfig
from tfvidgen.layers import noise

__all__ = ["VideoGAN", "Network", "OptimizerSpec", "Input", "NETWORK_ROLES", "INPUT_ROLES",
           "LATENT_ROLES"]

NETWORK_ROLES = ("generator", "ema", "encoder", "discriminator")
INPUT_ROLES = ("appearance", "motion", "label", "noise", "image", "video", "num_frames",
               "control")
#: roles drawn from a seed: N(0, 1) per example; sample --fix/--interpolate act on these
LATENT_ROLES = ("appearance", "motion", "noise")


@dataclasses.dataclass(frozen=True)
class Network:
    role: str                      # one of NETWORK_ROLES
    item: str                      # checkpoint entry; several networks may share one
    source: str | None = None      # role "ema": the attribute it averages

    def __post_init__(self):
        if self.role not in NETWORK_ROLES or (self.role == "ema") != (self.source is not None):
            raise ValueError(f"bad network declaration {self}")


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    networks: tuple[str, ...]      # attributes whose trainable variables it updates, in order
    learning_rate: str             # TrainConfig field of its base rate ("g_lr", "d_lr")
    log_name: str                  # TensorBoard: learning_rate/<log_name>
    name: str = "adam"
    lr_scale: float = 1.0          # e.g. StyleGAN2 lazy regularisation: lr * c, betas ** c
    beta_power: float = 1.0
    #: (learning rate, TrainConfig, spec) -> optimizer; default Adam(lr, beta1, beta2)
    make: Callable | None = None

    def learning_rate_of(self, train: TrainConfig) -> float:
        return getattr(train, self.learning_rate) * self.lr_scale

    def build(self, train: TrainConfig) -> keras.optimizers.Optimizer:
        lr = self.learning_rate_of(train)
        if self.make is not None:
            return self.make(lr, train, self)
        return keras.optimizers.Adam(lr, beta_1=train.beta1 ** self.beta_power,
                                     beta_2=train.beta2 ** self.beta_power, name=self.name)


@dataclasses.dataclass(frozen=True)
class Input:
    name: str
    role: str                      # one of INPUT_ROLES
    shape: tuple = ()              # per example (the batch dimension is implied)
    dtype: str = "float32"
    salt: int | None = None        # LATENT_ROLES: drawn from (seed, salt); None: given
    bound: float | None = None     # floats: largest |value| (None: VideoGAN.max_serving_latent)
    int_range: tuple | None = None  # ints: [low, high)
    #: one value per request, no batch dimension (e.g. num_frames: one length for the batch)
    per_request: bool = False

    def __post_init__(self):
        if self.role not in INPUT_ROLES or (self.role in LATENT_ROLES) != (self.salt is not None):
            raise ValueError(f"bad input declaration {self}")

    @property
    def spec(self) -> tf.TensorSpec:
        batch = [] if self.per_request else [None]
        return tf.TensorSpec([*batch, *self.shape], self.dtype, name=self.name)


class VideoGAN(keras.Model):
    """Base class of every tfvidgen model; see the module docstring for the contract."""

    #: {phase: name of the optimizer applying its gradients}, in the default running order
    PHASES: dict = {}
    #: what training batches hold (data.pipeline.TRAINING_DATA): "clips", or "triples" (source
    #: video, target image, real target video: image-to-video models)
    TRAINING_DATA = "clips"

    def __init__(self, train: TrainConfig, **kwargs):
        super().__init__(**kwargs)
        self.train_cfg = train
        # Not Keras-tracked attributes: these would join model.variables (the checkpoint items
        # are built from those) or be wrapped in Keras' tracked containers.
        object.__setattr__(self, "optimizers", {})
        object.__setattr__(self, "_step_counter", None)

    # ---- declarations (subclass hooks) --------------------------------------------------------
    def networks(self) -> dict:
        """{attribute: Network}; an attribute may be None (e.g. the EMA copy when EMA is off)."""
        raise NotImplementedError

    def optimizer_specs(self) -> dict:
        """{checkpoint name: OptimizerSpec}."""
        raise NotImplementedError

    def inputs(self) -> list:
        """[Input] of generate() (and of the serving endpoints)."""
        raise NotImplementedError

    def build_networks(self) -> None:
        """Creates every variable (one dummy forward of each network)."""
        raise NotImplementedError

    def phase_context(self, batch) -> dict:
        """What the phases of one step share (e.g. latents, fakes, a tape opened early)."""
        return {}

    def shared_fakes_context(self, batch, g_phase: str = "g_main") -> dict:
        """A phase_context for models whose D and G phases share one generator forward:
        {"latents", "fakes" (recorded on g_phase's tape), "detached" (for the D phases)}."""
        context = {"latents": self.latents_for_batch(batch)}
        with self.tape_for(context, g_phase):
            context["fakes"] = self.generator(context["latents"], training=True)
        # D updates happen outside g_phase's tape (tape.stop_recording would pause D's tape too).
        context["detached"] = tf.stop_gradient(context["fakes"])
        return context

    def phase_loss(self, phase: str, batch, context: dict):
        """(total, logs) of `phase` as per-replica means, recorded on the phase's tape."""
        raise NotImplementedError

    def phases(self, step: int) -> tuple:
        """The phases to run at `step` (finished steps before this one), chosen on the host."""
        del step
        return tuple(self.PHASES)

    def real_batches_per_step(self) -> int:
        """Real batches one training step consumes; above 1, `batch` has a leading axis of it."""
        return 1

    # ---- inspection (tfvidgen.explain) -------------------------------------------------------
    def discriminator_scores(self, videos, labels=None) -> dict:
        """{discriminator view name: realness logits [B]} of videos [B, T, H, W, 3] in [-1, 1],
        differentiable w.r.t. the videos (saliency). Frame discriminators: mean over frames."""
        raise NotImplementedError(f"{type(self).__name__} declares no discriminator scores")

    def explain_views(self) -> dict:
        """Model-specific views {name: (help, fn)}: fn(inputs) -> (video [B, T, H, W, 3] in
        [-1, 1], {panel: maps [B, T, H, W] in [0, 1]}), inputs as for generate()."""
        return {}

    # ---- networks and optimizers by role -------------------------------------------------------
    def network(self, attribute: str):
        return getattr(self, attribute)

    def networks_of(self, role: str) -> list:
        return [getattr(self, a) for a, n in self.networks().items()
                if n.role == role and getattr(self, a) is not None]

    def inference_networks(self) -> list:
        """What generate/serving use: each generator and encoder, or its EMA copy when kept."""
        averaged = {n.source: a for a, n in self.networks().items()
                    if n.role == "ema" and getattr(self, a) is not None}
        return [getattr(self, averaged.get(a, a)) for a, n in self.networks().items()
                if n.role in ("generator", "encoder")]

    @property
    def sampling_generator(self) -> keras.Model:
        averaged = [a for a, n in self.networks().items()
                    if n.role == "ema" and n.source == "generator"]
        ema = getattr(self, averaged[0]) if averaged else None
        return ema if ema is not None else self.generator

    def optimizer_variables(self, name: str) -> list:
        return [v for a in self.optimizer_specs()[name].networks
                for v in getattr(self, a).trainable_variables]

    def learning_rates(self) -> dict:
        """{log name: configured learning rate} of every optimizer."""
        return {s.log_name: s.learning_rate_of(self.train_cfg)
                for s in self.optimizer_specs().values()}

    def reset_learning_rates(self) -> None:
        """The configured rates (a restore brings back the stored ones)."""
        for name, spec in self.optimizer_specs().items():
            self.optimizers[name].learning_rate.assign(spec.learning_rate_of(self.train_cfg))

    @property
    def step(self) -> tf.Variable:
        return self._step_counter

    def _make_step(self) -> None:
        if self._step_counter is None:
            step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            object.__setattr__(self, "_step_counter", step)

    def compile(self, *ordered, **named):
        """Creates the declared optimizers (or takes them, positionally in declaration order or
        by name), every variable, the EMA copies (equal to their sources) and the optimizers'
        slots (so a checkpoint is complete from step 0), and the step."""
        super().compile()
        specs = self.optimizer_specs()
        given = {**dict(zip(specs, ordered)), **named}
        self.optimizers.clear()
        self.optimizers.update({k: given.get(k) or s.build(self.train_cfg)
                                for k, s in specs.items()})
        self.prepare_inference()
        for name, optimizer in self.optimizers.items():
            optimizer.build(self.optimizer_variables(name))

    def prepare_inference(self) -> None:
        """Every variable and the step, no optimizers (sampling, export, evaluation)."""
        self.build_networks()
        for attribute, net in self.networks().items():
            if net.role == "ema" and getattr(self, attribute) is not None:
                getattr(self, attribute).set_weights(getattr(self, net.source).get_weights())
        self._make_step()

    def checkpoint_items(self) -> dict:
        """Every variable of the model, by checkpoint item, in model.variables order.

        Why not `Checkpoint(model=self)`: Keras 3 keeps layers held in Python lists in its own
        TrackedList, which TF's object graph does not follow, so e.g. BN statistics of such layers
        would silently be left out. Explicit ordered lists cover every variable (checked here).
        """
        owner = {}
        for attribute, net in self.networks().items():
            if getattr(self, attribute) is not None:
                for v in getattr(self, attribute).variables:
                    owner.setdefault(id(v), net.item)
        items: dict = {}
        for v in self.variables:
            if id(v) not in owner:
                raise ValueError(f"{v.path} belongs to no declared network: it would not be "
                                 f"checkpointed")
            items.setdefault(owner[id(v)], []).append(v)
        return items

    def checkpoint(self, training: bool = True) -> tf.train.Checkpoint:
        """The step, every variable by item and (training) the optimizers with their slots."""
        optimizers = self.optimizers if training else {}
        return tf.train.Checkpoint(step=self.step, **self.checkpoint_items(), **optimizers)

    def restore_for_training(self, checkpoint: tf.train.Checkpoint, prefix: str, log) -> None:
        """Restores `prefix` into checkpoint() and raises unless every value came back (the run
        resumes exactly). A model whose checkpoint gained an item overrides this to accept
        checkpoints written before (saying so through `log`)."""
        checkpoint.restore(prefix).assert_consumed()

    def update_ema(self) -> None:
        """EMA of every declared copy; call in cross-replica context after each step."""
        decay = self.train_cfg.ema_decay
        for attribute, net in self.networks().items():
            target = getattr(self, attribute)
            if net.role != "ema" or target is None:
                continue
            for source, copy in zip(getattr(self, net.source).weights, target.weights):
                if source.trainable:
                    copy.assign(decay * copy + (1.0 - decay) * source)
                else:                       # BN statistics, spectral-norm vectors: copy
                    copy.assign(source)

    #: generator batches that re-estimate an EMA copy's BN statistics (momentum 0.9: the
    #: copied starting point keeps 0.9^48 < 1% weight)
    ema_statistics_batches = 48

    def ema_batch_norms(self) -> list:
        """BN layers of the EMA generator copy. update_ema copies their statistics from the
        source, but those describe the source's activations, not the averaged weights': measured
        on the G3AN quickstart (EMA 0.999), the EMA copy's samples had pixel std 0.10-0.17
        against the source's 0.45 and FD 690-800 against 320-600. recalibrate_ema_statistics
        re-estimates them from the copy's own activations ("standing statistics")."""
        averaged = [getattr(self, a) for a, n in self.networks().items()
                    if n.role == "ema" and n.source == "generator"]
        return [layer for net in averaged if net is not None
                for layer in net._flatten_layers(include_self=False, recursive=True)
                if isinstance(layer, keras.layers.BatchNormalization)]

    def recalibrate_ema_statistics(self, run=None, batch_size: int = 32, seed: int = 0) -> bool:
        """Runs the EMA generator in training mode on `ema_statistics_batches` batches of
        sampled inputs, so its BN moving statistics are those of its own weights; returns
        whether there was anything to do. `run(fn, latents)` runs fn in every replica
        (strategy.run: synchronized BN needs the replica context); train_lib calls this on
        every worker before each checkpoint, sample and evaluation. Training never reads the
        EMA copy, so this changes no trained weight."""
        if not self.ema_batch_norms():
            return False
        if getattr(self, "_ema_statistics_fn", None) is None:
            self._ema_statistics_fn = tf.function(
                lambda latents: self.sampling_generator(latents, training=True))
        run = run or (lambda fn, latents: fn(latents))
        label = [i for i in self.inputs() if i.role == "label"]
        labels = (tf.range(batch_size, dtype=tf.int32) % label[0].int_range[1]
                  if label else None)
        for i in range(self.ema_statistics_batches):
            run(self._ema_statistics_fn,
                self.sample_inputs(batch_size, seed + i * batch_size, labels))
        return True

    # ---- phases: the one update path -----------------------------------------------------------
    def train_step(self, batch, phases: tuple | None = None):
        """One iteration on a per-replica batch; returns per-replica logs (scalars).

        phases=None: those of the current step, read on the host when traced (train_lib passes
        them explicitly and keeps one traced function per tuple)."""
        if phases is None:
            with tf.init_scope():
                phases = self.phases(int(self.step.numpy()))
        context = self.phase_context(batch)
        logs = {}
        for phase in phases:                       # Python loop: unrolled when traced
            logs.update(self.run_phase(phase, batch, context))
        return logs

    def run_phase(self, phase: str, batch, context: dict) -> dict:
        """phase_loss on its tape (one the context opened early, else a new one), then its
        optimizer's update."""
        optimizer = self.PHASES[phase]
        tape = context.pop(("tape", phase), None)
        if tape is None:
            tape = tf.GradientTape()
        with tape:
            total, logs = self.phase_loss(phase, batch, context)
        self._apply(tape, total, self.optimizer_variables(optimizer), self.optimizers[optimizer])
        return logs

    @staticmethod
    def tape_for(context: dict, phase: str) -> tf.GradientTape:
        """A tape `phase` will use: record on it now what the phase differentiates through
        later (G3AN's G step reuses the fakes its D step saw)."""
        return context.setdefault(("tape", phase), tf.GradientTape())

    @staticmethod
    def _apply(tape, total, variables, optimizer) -> None:
        # The optimizer SUMS gradients over replicas: differentiate mean / num_replicas. The
        # division must be recorded, so it runs on the (re-entered) tape.
        with tape:
            scaled = distribute.scale_for_replicas(total)
        grads = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(grads, variables))

    # ---- inputs by role ------------------------------------------------------------------------
    def call(self, inputs, training=False):
        return self.generate(inputs, training=training)

    def generate(self, inputs: dict, training: bool = False, use_ema: bool = True):
        """Video [B, T, H, W, 3] in [-1, 1] (EMA generator when enabled and use_ema)."""
        generator = self.sampling_generator if use_ema else self.generator
        return generator(inputs, training=training)

    def input_roles(self) -> dict:
        return {i.name: i.role for i in self.inputs()}

    def latent_specs(self) -> dict:
        """{name: TensorSpec [None, *shape]} of every declared input (serving_default's)."""
        return {i.name: i.spec for i in self.inputs()}

    def latents_from_seeds(self, seeds, labels=None) -> dict:
        """Inputs from per-example int64[2] keys (stateless): latent roles drawn N(0, 1) from
        (seed, salt), labels passed through."""
        out = {}
        for i in self.inputs():
            if i.salt is not None:
                size = math.prod(i.shape)
                value = noise.per_example_normal(seeds, i.salt, size)
                out[i.name] = value if len(i.shape) == 1 else tf.reshape(value, [-1, *i.shape])
            elif i.role == "label":
                if labels is None:
                    raise ValueError(f"conditional {type(self).__name__} needs labels")
                out[i.name] = tf.cast(labels, i.dtype)
            else:
                raise ValueError(f"{i.name} ({i.role}) cannot be drawn from a seed")
        return out

    def sample_inputs(self, batch_size: int, seed: int, labels=None) -> dict:
        """Inputs of samples seed, seed+1, ..., seed+batch_size-1 (stateless, reproducible;
        sample i equals what the serving `sample` endpoint returns for seed + i)."""
        seeds = tf.range(batch_size, dtype=tf.int64) + tf.cast(seed, tf.int64)
        return self.latents_from_seeds(noise.seeds_from_ints(seeds), labels)

    def latents_for_batch(self, batch) -> dict:
        return self.latents_from_seeds(batch["seed"], batch.get("label"))

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

        serving_default: every declared input -> {"video": uint8 [B, T, H, W, 3]}
        sample:          seed int64 [B] (+ the given inputs, e.g. label) -> the same, latents
                         drawn in-graph with stateless RNG
        latents:         seed int64 [B] (+ given inputs) -> the inputs `sample` uses for those
                         seeds, so clients can fix, mix or interpolate them and call
                         serving_default

        Inputs are checked in the graph (core ops only, so any TF Serving runs the checks) and
        a bad one answers InvalidArgument naming it, never a video: its shape (rank and sizes),
        one batch size in [1, max_serving_batch] across the inputs, integers in their declared
        range (labels in [0, num_classes)), floats finite with |value| <= their bound
        (max_serving_latent for latents). The signatures therefore declare no shapes
        (TensorSpec(None)): the runtime does not enforce a declared shape, and a wrong rank used
        to fail deep inside the graph with an error that named no input. A model adding an
        endpoint declares its inputs in endpoint_inputs() and builds its function from
        checked_inputs and video_output, its signature with signature_of.
        """
        declared = self.endpoint_inputs()["serving_default"]
        seed_input, *given = self.endpoint_inputs()["sample"]
        generator = self.sampling_generator

        def from_inputs(*args):
            return video_output(generator(self.checked_inputs(declared, args), training=False))

        def latents(*args):
            inputs = self.checked_inputs([seed_input, *given], args)
            return self.latents_from_seeds(noise.seeds_from_ints(inputs["seed"]),
                                           inputs.get("label"))

        def from_seeds(*args):
            return video_output(generator(latents(*args), training=False))

        seed_signature = signature_of([seed_input, *given])
        return {"serving_default": (from_inputs, signature_of(declared)),
                "sample": (from_seeds, seed_signature),
                "latents": (latents, seed_signature)}

    def endpoint_inputs(self) -> dict:
        """{endpoint: [Input] in signature order}: what each serving endpoint takes. A model
        adding an endpoint adds its entry here too (tests, examples and clients read it)."""
        declared = sorted(self.inputs(), key=lambda i: i.name)
        given = [i for i in declared if i.salt is None]
        seed = Input("seed", "control", (), "int64")     # no range: any int64 is a seed
        return {"serving_default": declared, "sample": [seed, *given],
                "latents": [seed, *given]}

    def serving_example(self, endpoint: str, batch_size: int = 2, seed: int = 0) -> dict:
        """Valid arguments {name: NumPy value} of `endpoint` (tests, the serving client's
        example request): latents drawn for seeds seed, seed+1, ..., labels 0, 1, ...,
        num_frames the trained length, other integers counting up inside their range,
        images/videos a smooth pattern, other floats 1 (a neutral scale). Override for inputs
        these rules cannot fill."""
        labels = tf.range(batch_size) % self.cfg.num_classes
        drawn = self.sample_inputs(batch_size, seed, labels if self.cfg.conditional else None)
        out = {}
        for i in self.endpoint_inputs()[endpoint]:
            shape = [*([] if i.per_request else [batch_size]), *i.shape]
            if i.name in drawn:
                value = drawn[i.name]
            elif i.role == "num_frames":
                value = tf.fill(shape, self.cfg.num_frames)
            elif i.role == "label":
                value = tf.broadcast_to(tf.reshape(labels, [-1] + [1] * len(i.shape)), shape)
            elif i.dtype == "uint8":
                value = tf.cast(127.5 + 100 * tf.sin(tf.cast(tf.range(math.prod(shape)), tf.float32)
                                                     * 0.01 + seed), tf.uint8)
            elif i.dtype.startswith("int"):
                low, high = i.int_range or (seed, seed + batch_size)
                value = low + tf.range(math.prod(shape)) % (high - low)
            else:
                value = tf.ones(shape)
            out[i.name] = tf.reshape(tf.cast(value, i.dtype), shape).numpy()
        return out

    def checked_inputs(self, declared: list, args) -> dict:
        """{name: value} of `args` (in `declared` order), passed on only once every serving
        check passed: shape, one batch size, and each input's value range."""
        checked = {}
        for spec, value in zip(declared, args):
            shape = spec.spec.shape
            check = _assert_serving_shape(spec.name, value, shape, batched=not spec.per_request)
            with tf.control_dependencies([check]):
                if spec.per_request and not spec.shape:
                    # Not ensure_shape: a fully known expected shape let grappler refuse a
                    # wrong one statically, before the assert could name the input. Padding
                    # makes the first element exist whatever the shape (the assert then fails).
                    flat = tf.reshape(tf.identity(value), [-1])
                    checked[spec.name] = tf.pad(flat, [[0, 1]])[0]
                else:
                    checked[spec.name] = tf.ensure_shape(tf.identity(value), shape)
        first, *others = [spec.name for spec in declared if not spec.per_request]
        batch = tf.shape(checked[first])[0]
        deps = [tf.debugging.assert_positive(batch, message=f"{first}: the batch must not be "
                                                            f"empty"),
                tf.debugging.assert_less_equal(batch, self.max_serving_batch, message=(
                    f"{first}: batch size must be at most {self.max_serving_batch}"))]
        for name in others:
            deps.append(tf.debugging.assert_equal(tf.shape(checked[name])[0], batch, message=(
                f"{name} must have the same batch size as the other inputs")))
        for spec in declared:
            value = checked[spec.name]
            if spec.role == "label":
                low, high = spec.int_range or (0, self.cfg.num_classes)
                deps += _int_range_checks(spec.name, value, low, high)
            elif spec.int_range is not None:
                deps += _int_range_checks(spec.name, value, *spec.int_range)
            elif value.dtype.is_floating:
                bound = self.max_serving_latent if spec.bound is None else spec.bound
                # The bound is tested on CheckNumerics' output, so a NaN or inf is always
                # reported as such (a data dependency orders the two; asserts side by side don't).
                finite = tf.debugging.assert_all_finite(value, f"{spec.name} must be finite")
                largest = tf.reduce_max(tf.abs(finite))
                deps.append(tf.debugging.assert_less_equal(
                    largest, tf.constant(bound, largest.dtype),
                    message=f"{spec.name} must have |values| <= {bound:g}"))
        with tf.control_dependencies(deps):
            return {name: tf.identity(value) for name, value in checked.items()}


class ImageVideoGAN(VideoGAN):
    """The common layout: `generator` (+ `ema_generator`), `image_discriminator` and
    `video_discriminator`, one Adam for G and one for both Ds (Adam is per-parameter: equal to
    separate ones). Item and optimizer names are those of existing workdirs: do not rename; the
    order of the Ds is the order of the D optimizer's slots in checkpoints."""

    def networks(self) -> dict:
        return {"generator": Network("generator", "generator"),
                "ema_generator": Network("ema", "ema_generator", source="generator"),
                "image_discriminator": Network("discriminator", "discriminators"),
                "video_discriminator": Network("discriminator", "discriminators")}

    def optimizer_specs(self) -> dict:
        return {"g_optimizer": OptimizerSpec(("generator",), "g_lr", "generator", name="g_adam"),
                "d_optimizer": OptimizerSpec(("video_discriminator", "image_discriminator"),
                                             "d_lr", "discriminator", name="d_adam")}


def upsample_maps(maps, size):
    """[B, T, h, w] -> [B, T, H, W], nearest (each feature-map cell stays a visible block): the
    panels of a model's explain views."""
    b, t = tf.shape(maps)[0], tf.shape(maps)[1]
    flat = tf.reshape(maps, tf.concat([[b * t], tf.shape(maps)[2:], [1]], 0))
    resized = tf.image.resize(flat, size, method="nearest")
    return tf.reshape(resized, tf.concat([[b, t], size], 0))


def frame_scores(network, videos, labels=None, **kwargs):
    """[B] mean over frames (and patches) of a frame discriminator's logits on videos
    [B, T, H, W, 3]: differentiable w.r.t. every frame (discriminator_scores)."""
    b, t = tf.shape(videos)[0], tf.shape(videos)[1]
    frames = tf.reshape(videos, tf.concat([[b * t], tf.shape(videos)[2:]], 0))
    args = () if labels is None else (tf.repeat(labels, t),)
    logits = tf.cast(network(frames, *args, **kwargs), tf.float32)
    return tf.reduce_mean(tf.reshape(logits, [b, t, -1]), axis=[1, 2])


def video_output(video) -> dict:
    """{"video": uint8} of a video in [-1, 1], the output of every video endpoint."""
    # The inputs are checked; this is the last guard: NaN cast to uint8 is 0, so a generator
    # that overflowed anyway would answer with a plausible black video.
    video = tf.debugging.assert_all_finite(tf.cast(video, tf.float32),
                                           "the generated video is not finite")
    return {"video": pixels.to_uint8(video)}


def signature_of(declared: list) -> list:
    """The serving signature of inputs `declared` (in order): TensorSpec(None) of each dtype."""
    # No shapes: the graph checks them and names the input (see serving_endpoints).
    return [tf.TensorSpec(None, tf.as_dtype(i.dtype), name=i.name) for i in declared]


def _int_range_checks(name: str, value, low: int, high: int) -> list:
    in_range = f"{name} must be in [{low}, {high})"
    return [tf.debugging.assert_greater_equal(value, tf.cast(low, value.dtype), message=in_range),
            tf.debugging.assert_less(value, tf.cast(high, value.dtype), message=in_range)]


def _assert_serving_shape(name: str, value, shape: tf.TensorShape, batched: bool = True):
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
    layout = ", ".join("batch" if i == 0 and batched else ("any" if d < 0 else str(d))
                       for i, d in enumerate(sizes))
    return tf.debugging.Assert(ok, [f"{name} must have shape ({layout}), got shape", actual])
