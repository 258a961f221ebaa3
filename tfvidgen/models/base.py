"""The model contract every tfvidgen model implements, and the one place its updates run.

A model is a keras.Model built from its frozen config `self.cfg` (a dataclass with `conditional`,
`num_classes`, DATA_FIELDS = ("resolution", "num_frames", "num_classes") and `validate()`). It
declares what it is; the base derives everything else (checkpoints, EMA, the update path,
sampling, serving) from the declarations. The contract, in one table:

MUST define (declarations)
  Config, CAPABILITIES  the config class; Capabilities (what beyond `sample`: read unbuilt by
                 tfvidgen.models.capabilities).
  PHASES         class dict {phase: optimizer name}: every phase the class can run.
  networks()     {attribute: Network(role, item)}: roles generator, ema (EMA copy of `source`,
                 None when EMA is off), encoder, discriminator; `item` is the checkpoint entry.
                 The main generator is the attribute `generator`; add_generator() makes it and
                 its EMA copy `ema_generator`.
  optimizer_specs()  {checkpoint name: OptimizerSpec(networks, ...)}: what each optimizer
                 updates, its TrainConfig rate, how it is made. (ImageVideoGAN declares both for
                 the common generator + image D + video D layout.)
  inputs()       [Input(name, role, shape, dtype, salt)]: roles appearance, motion, noise
                 (N(0, 1) per example from (seed, salt)), label, image (given by the caller).
                 Seed drawing, serving validation, export metadata and sampling go by role.
  build_networks()  creates every variable (one dummy forward of each network).
  phase_loss(phase, batch, context) -> (total, logs): per-replica means, on the phase's tape.
MAY override (hooks; each default is the common case)
  phases(step)   the phases of a step, chosen on the host (default: all of PHASES in order);
  active_phases()  the PHASES this configuration ever runs (default: all);
  phase_context(batch)  what the phases of one step share (shared_fakes_context: one forward);
  real_batches_per_step()  real batches one step consumes (default 1; above 1 every entry of
                 `batch` has a leading axis of that size: k consecutive batches);
  TRAINING_DATA  "clips" (default) or "triples" (data.pipeline.make_triples_dataset);
  training_state()  extra training-only state a checkpoint holds (default none);
  run_generator(generator, inputs, training, num_frames)  a generator's forward on generate()'s
                 inputs (default generator(inputs)): clipping, encoders, a requested length;
  draw_latent(spec, seeds, num_frames)  how one latent is drawn from a seed (default N(0, 1));
  extra_endpoints(), serving_context()  the model's own serving endpoints, the trace context;
  min_serving_frames, max_direction_scale...  serving limits as class attributes;
  discriminator_scores(videos, labels), explain_views()  for tfvidgen.explain.
must NOT override (derived: one implementation for all models)
  generate, sample_inputs, latents_from_seeds, serving_endpoints, endpoint_inputs,
  checked_inputs, checkpoint, checkpoint_items, restore_for_training, compile,
  prepare_inference, update_ema, train_step, run_phase.

train_step(batch, phases) runs the phases in order, each through run_phase/_apply (the one
tape/scale/apply). train_lib traces one function per distinct phase tuple: nothing is chosen by
tf.cond, which fails around apply_gradients under MirroredStrategy, and an optimizer whose phase
did not run is not touched (a loss times 0 would still move Adam's weights). `self.step` (int64,
checkpointed as "step") counts finished steps and is readable in-graph (ramps, warm-ups).
generate(inputs, num_frames=None) -> video [B, T, H, W, 3] in [-1, 1]. Build a model with
tfvidgen.models.build.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Callable

import keras
import tensorflow as tf

from tfvidgen import distribute
from tfvidgen.config import TrainConfig
from tfvidgen.layers import noise
from tfvidgen.models import serving

__all__ = ["VideoGAN", "Capabilities", "Network", "OptimizerSpec", "Input", "NETWORK_ROLES",
           "INPUT_ROLES", "LATENT_ROLES"]

NETWORK_ROLES = ("generator", "ema", "encoder", "discriminator")
INPUT_ROLES = ("appearance", "motion", "label", "noise", "image", "video", "num_frames",
               "control")
#: roles drawn from a seed: N(0, 1) per example; sample --fix/--interpolate act on these
LATENT_ROLES = ("appearance", "motion", "noise")


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a model can do beyond the fixed-length `sample`; every entry point reads this, none
    probes a model with hasattr."""
    variable_length: bool = False  # generate(..., num_frames=N) and the `sample_frames` endpoint
    image_input: bool = False      # the generator animates a given image (image-to-video)
    transfer: bool = False         # transfer(image, video): a video's motion onto an image
    steer: bool = False            # a motion dictionary: tfvidgen.control and `steer`


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

    #: what the model can do beyond `sample` (tfvidgen.models.capabilities reads it unbuilt)
    CAPABILITIES = Capabilities()
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

    def active_phases(self) -> tuple:
        """The phases of PHASES this configuration ever runs (e.g. a curriculum's tasks)."""
        return tuple(self.PHASES)

    def training_state(self) -> dict:
        """{checkpoint name: trackable}: training-only state beyond the step, networks and
        optimizers that a training checkpoint holds (e.g. a gate's stored losses)."""
        return {}

    def add_generator(self, make: Callable[[], keras.Model]) -> None:
        """Sets `generator` = make() and, when EMA is on, `ema_generator` = make() (its averaged
        copy: declare it in networks() as Network("ema", ..., source="generator")). Call it where
        the generator's variables belong: construction order fixes the initialisers' seeds and
        the order of the checkpoint's variables."""
        self.generator = make()
        self.ema_generator = make() if self.train_cfg.ema_decay > 0 else None

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

    def checkpoint(self, training: bool = True, without: tuple = ()) -> tf.train.Checkpoint:
        """The step, every variable by item and (training) the optimizers with their slots and
        the training_state() (less the names in `without`)."""
        extra = ({k: v for k, v in self.training_state().items() if k not in without}
                 if training else {})
        optimizers = self.optimizers if training else {}
        return tf.train.Checkpoint(step=self.step, **self.checkpoint_items(), **optimizers,
                                   **extra)

    def restore_for_training(self, checkpoint: tf.train.Checkpoint, prefix: str, log) -> None:
        """Restores `prefix` into checkpoint() and raises unless every value came back (the run
        resumes exactly). A checkpoint written before a training_state() item existed restores
        the rest exactly; that item keeps its initial value, and `log` says so."""
        stored = {name.split("/")[0] for name, _ in tf.train.list_variables(prefix)}
        missing = tuple(name for name in self.training_state() if name not in stored)
        if missing:
            checkpoint = self.checkpoint(training=True, without=missing)
        checkpoint.restore(prefix).assert_consumed()
        for name in missing:
            log(f"note: {prefix} holds no {name} (written by an older tfvidgen): it starts from "
                f"its initial value")

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

    # ---- generation ----------------------------------------------------------------------------
    def call(self, inputs, training=False):
        return self.generate(inputs, training=training)

    def generate(self, inputs: dict, training: bool = False, use_ema: bool = True,
                 num_frames=None):
        """Video [B, T, H, W, 3] in [-1, 1] (EMA generator when enabled and use_ema).

        num_frames (variable_length models only; an int or a scalar tensor): a video of that
        many frames instead of the trained length. Latents whose size depends on the length
        must cover it: draw them with sample_inputs(..., num_frames=N) (a longer draw starts
        with the shorter one, so N frames continue the trained-length video of the same seed).
        """
        if num_frames is not None and not self.CAPABILITIES.variable_length:
            raise ValueError(f"num_frames={num_frames}: {type(self).__name__} generates videos "
                             f"of its trained length only ({self.cfg.num_frames} frames)")
        generator = self.sampling_generator if use_ema else self.generator
        return self.run_generator(generator, inputs, training, num_frames)

    def run_generator(self, generator, inputs: dict, training: bool, num_frames=None):
        """Hook: `generator` (the training or the EMA copy) on generate()'s inputs -> video in
        [-1, 1] (num_frames None: the trained length)."""
        del num_frames                  # only variable_length models are given one
        return generator(inputs, training=training)

    # ---- inputs by role ------------------------------------------------------------------------
    def input_roles(self) -> dict:
        return {i.name: i.role for i in self.inputs()}

    def draw_latent(self, spec: Input, seeds, num_frames=None):
        """Hook: latent input `spec` for per-example int64[2] keys: N(0, 1) from (seed, salt).
        num_frames (variable_length models): the latent of a video that long, where its size
        depends on the length."""
        del num_frames
        value = noise.per_example_normal(seeds, spec.salt, math.prod(spec.shape))
        return value if len(spec.shape) == 1 else tf.reshape(value, [-1, *spec.shape])

    def latents_from_seeds(self, seeds, labels=None, num_frames=None) -> dict:
        """Seed-drawn inputs from per-example int64[2] keys (stateless): latent roles drawn
        N(0, 1) by draw_latent, labels passed through; given inputs (image) are left out."""
        out = {}
        for i in self.inputs():
            if i.salt is not None:
                out[i.name] = self.draw_latent(i, seeds, num_frames)
            elif i.role == "label":
                if labels is None:
                    raise ValueError(f"conditional {type(self).__name__} needs labels")
                out[i.name] = tf.cast(labels, i.dtype)
            elif i.role != "image":
                raise ValueError(f"{i.name} ({i.role}) cannot be drawn from a seed")
        return out

    def sample_inputs(self, batch_size: int, seed: int, labels=None, images=None,
                      num_frames=None) -> dict:
        """Inputs of samples seed, seed+1, ..., seed+batch_size-1 (stateless, reproducible;
        sample i equals what the serving `sample` endpoint returns for seed + i).

        images: image_input models only, and required there: float [batch_size, R, R, 3] in
        [-1, 1], the images to animate (e.g. tfvidgen.data.synthetic.first_frames).
        num_frames: variable_length models: latents for a video that long (see generate)."""
        if num_frames is not None and not self.CAPABILITIES.variable_length:
            raise ValueError(f"num_frames={num_frames}: {type(self).__name__} generates videos "
                             f"of its trained length only ({self.cfg.num_frames} frames)")
        seeds = tf.range(batch_size, dtype=tf.int64) + tf.cast(seed, tf.int64)
        out = self.latents_from_seeds(noise.seeds_from_ints(seeds), labels, num_frames)
        image_inputs = [i for i in self.inputs() if i.role == "image"]
        if images is not None and not image_inputs:
            raise ValueError(f"{type(self).__name__} takes no image input; images were given")
        for i in image_inputs:
            if images is None:
                shape = ", ".join(map(str, [batch_size, *i.shape]))
                raise ValueError(f"{type(self).__name__} animates a given image: sample_inputs "
                                 f"needs images=float [{shape}] in [-1, 1] (e.g. "
                                 f"tfvidgen.data.synthetic.first_frames)")
            value = tf.convert_to_tensor(images, tf.float32)
            if value.shape.as_list() != [batch_size, *i.shape]:
                raise ValueError(f"images: expected shape [{batch_size}, "
                                 f"{', '.join(map(str, i.shape))}], got {value.shape.as_list()}")
            out[i.name] = value
        return out

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
    #: variable_length models: the longest video `sample_frames` renders (guards the server's
    #: memory) and the shortest one the model can make
    max_serving_frames = 256
    min_serving_frames = 1

    def endpoint_inputs(self) -> dict:
        """{endpoint: [Input] in signature order}: what each serving endpoint takes (tests,
        examples, export metadata and clients read it); see tfvidgen.models.serving."""
        return serving.endpoint_inputs(self)

    def extra_endpoints(self) -> dict:
        """Hook: {name: ([Input] in signature order, fn(checked inputs {name: tensor}) -> video
        [B, T, H, W, 3] in [-1, 1])}: the model's own endpoints beside the common ones."""
        return {}

    def serving_context(self):
        """Hook: a context every endpoint is traced in (e.g. a core-op path of a layer)."""
        return contextlib.nullcontext()

    def serving_endpoints(self) -> dict:
        """{name: (function, input_signature)} that export.py writes into the SavedModel; see
        tfvidgen.models.serving.endpoints."""
        return serving.endpoints(self)

    def checked_inputs(self, declared: list, args) -> dict:
        """{name: value} of serving `args` (in `declared` order) once every check passed."""
        return serving.checked_inputs(declared, args, self.max_serving_batch,
                                      self.cfg.num_classes, self.max_serving_latent)


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


def checked_steps(latent, steps):
    """`steps` (an int or a scalar tensor: the steps of a num_frames video) after checking, when
    both are static, that latent [B, L, ...] holds at least that many."""
    held = latent.shape[1]
    if isinstance(steps, int) and held is not None and held < steps:
        raise ValueError(f"num_frames needs {steps} motion steps, the inputs hold {held}: draw "
                         f"them with sample_inputs(..., num_frames=...)")
    return steps


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
