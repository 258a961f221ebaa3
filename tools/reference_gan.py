"""A plain 3D DCGAN with no tfvidgen model code: the yardstick for what a vanilla GAN reaches on a
dataset within a step budget, scored with the pinned evaluation protocol (the classifier, real
test statistics, FD and IS of `python -m tfvidgen.evaluate`).

  python tools/reference_gan.py --out=runs/reference --steps=4000
  python tools/reference_gan.py --out=runs/reference_shapes --dataset=synthetic_shapes --steps=2000

Why it exists: when a model stops improving at a small budget, this says whether the model is
at fault or the budget and the data are (tfvidgen/models/RESULTS.md, "A vanilla GAN as the
yardstick"). Only the data pipeline and the evaluation come from tfvidgen; the networks and the
training step are the textbook ones (Radford et al. 2016, in 3D as in VGAN/TGAN):
  G: z (128) -> dense -> [T/4, 4, 4, 4w] -> transposed Conv3D k4 (stride 2 in space, and in time
     until T) with BN + ReLU per level, halving channels -> Conv3D k3 -> tanh.
  D: Conv3D k4 stride 2 in space (and in time after the first level while T > 2), LeakyReLU 0.2,
     no normalisation, doubling channels from w/2 -> dense -> one logit.
  Non-saturating BCE losses, Adam(lr, 0.5, 0.999), fresh latents for each D and G step, float32.

Outputs in --out: curve.jsonl (one line per --eval_every: step, fd, is, seconds; FD and IS of
--eval_samples videos, one set), result.json (the final generator, `--repeats` sets of
--num_samples as `evaluate`: mean and std, with the real-vs-real bound), samples.png (8 videos x T
frames). Launch from the repository root. Exit 2 with one `reference_gan: error:` line for a bad
flag.
"""

import json
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfvidgen  # noqa: E402,F401  (oneDNN default before TensorFlow loads)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from tfvidgen import errors, viz  # noqa: E402
from tfvidgen.config import DataConfig  # noqa: E402
from tfvidgen.data import pipeline  # noqa: E402
from tfvidgen.eval import classifier as classifier_lib  # noqa: E402
from tfvidgen.eval import metrics, protocol  # noqa: E402

__all__ = ["main", "make_generator", "make_discriminator"]

_OUT = flags.DEFINE_string("out", None, "Output directory (curve.jsonl, result.json, "
                           "samples.png; classifier/ and cache/ unless --eval_cache_dir).")
_DATASET = flags.DEFINE_enum("dataset", "synthetic_actions",
                             ["synthetic_actions", "synthetic_shapes"], "Embedded dataset.")
_RESOLUTION = flags.DEFINE_integer("resolution", 32, "Frame size (a power of two >= 16).")
_FRAMES = flags.DEFINE_integer("num_frames", 8, "Clip length (a power of two >= 4).")
_STRIDE = flags.DEFINE_integer("max_stride", 2, "Clip stride drawn from [1, max_stride].")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Batch size.")
_STEPS = flags.DEFINE_integer("steps", 4000, "Training steps (one D and one G update each).")
_WIDTH = flags.DEFINE_integer("width", 32, "Channel width w (G starts at 4w, D ends at 4w).")
_LR = flags.DEFINE_float("lr", 2e-4, "Adam learning rate of G and D.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of weights, latents and data order.")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 500, "Steps between curve points.")
_EVAL_SAMPLES = flags.DEFINE_integer("eval_samples", 256, "Videos per curve point.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 256, "Videos per set of the final result "
                                    "(and of each real test set), as evaluate's --num_samples.")
_REPEATS = flags.DEFINE_integer("repeats", 2, "Sets of --num_samples videos in the final result.")
_CLASSIFIER_STEPS = flags.DEFINE_integer("eval_classifier_steps", 400,
                                         "Training steps of the evaluation classifier (as "
                                         "evaluate's --eval_classifier_steps).")
_EVAL_CACHE = flags.DEFINE_string("eval_cache_dir", "", "Shared evaluation cache (as train's "
                                  "--eval_cache_dir): its classifier-<key>/ and cache/ are "
                                  "reused, so the numbers sit on the same classifier as a run's.")

Z_DIM = 128


def _levels(resolution: int) -> int:
    return int(math.log2(resolution // 4))


def make_generator(resolution: int, num_frames: int, width: int) -> keras.Model:
    """z [B, 128] -> videos [B, T, H, W, 3] in [-1, 1]."""
    levels = _levels(resolution)
    frames = max(1, num_frames // 4)
    channels = width * 2 ** (levels - 1)
    layers = keras.layers
    z = keras.Input([Z_DIM])
    h = layers.Dense(frames * 4 * 4 * channels, use_bias=False)(z)
    h = layers.Reshape([frames, 4, 4, channels])(h)
    h = layers.ReLU()(layers.BatchNormalization()(h))
    for _ in range(levels):
        time_stride = 2 if frames < num_frames else 1
        frames *= time_stride
        channels = max(1, channels // 2)
        h = layers.Conv3DTranspose(channels, 4, strides=(time_stride, 2, 2), padding="same",
                                   use_bias=False)(h)
        h = layers.ReLU()(layers.BatchNormalization()(h))
    return keras.Model(z, layers.Conv3D(3, 3, padding="same", activation="tanh")(h),
                       name="generator")


def make_discriminator(resolution: int, num_frames: int, width: int) -> keras.Model:
    """videos [B, T, H, W, 3] -> logits [B, 1]."""
    layers = keras.layers
    videos = keras.Input([num_frames, resolution, resolution, 3])
    h, frames, channels = videos, num_frames, max(1, width // 2)
    for i in range(_levels(resolution) + 1):
        time_stride = 2 if i > 0 and frames > 2 else 1
        frames //= time_stride
        h = layers.LeakyReLU(0.2)(layers.Conv3D(channels, 4, strides=(time_stride, 2, 2),
                                                padding="same")(h))
        channels *= 2
    return keras.Model(videos, layers.Dense(1)(layers.Flatten()(h)), name="discriminator")


def _train_step(generator, discriminator, g_opt, d_opt, batch_size):
    @tf.function
    def step(real):
        with tf.GradientTape() as tape:
            fake = generator(tf.random.normal([batch_size, Z_DIM]), training=True)
            d_loss = (tf.reduce_mean(tf.nn.softplus(-discriminator(real, training=True)))
                      + tf.reduce_mean(tf.nn.softplus(discriminator(fake, training=True))))
        d_vars = discriminator.trainable_variables
        d_opt.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))
        with tf.GradientTape() as tape:
            fake = generator(tf.random.normal([batch_size, Z_DIM]), training=True)
            g_loss = tf.reduce_mean(tf.nn.softplus(-discriminator(fake, training=True)))
        g_vars = generator.trainable_variables
        g_opt.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))
        return d_loss, g_loss
    return step


def _generate(generator, count: int, seed: int) -> np.ndarray:
    """`count` videos on the uint8 grid (as evaluate scores a model's), from seeded latents."""
    z = tf.random.stateless_normal([count, Z_DIM], [seed, 0])
    videos = np.concatenate([generator(z[i:i + 64], training=False).numpy()
                             for i in range(0, count, 64)])
    return viz.from_uint8(viz.to_uint8(videos))


def _score(clf, videos, real_features) -> dict:
    out = classifier_lib.predict(clf, videos)
    return {"fd": metrics.frechet_distance_from_features(out["features"], real_features),
            "is": metrics.inception_score(out["action"])}


@errors.main_guard("reference_gan")
def main(argv):
    del argv
    if not _OUT.value:
        raise ValueError("give --out=<directory>")
    if _RESOLUTION.value < 16 or _RESOLUTION.value & (_RESOLUTION.value - 1):
        raise ValueError(f"--resolution={_RESOLUTION.value}: expected a power of two >= 16")
    if _FRAMES.value < 4 or _FRAMES.value & (_FRAMES.value - 1):
        raise ValueError(f"--num_frames={_FRAMES.value}: expected a power of two >= 4")
    for flag in (_BATCH, _STEPS, _WIDTH, _EVAL_EVERY, _EVAL_SAMPLES, _NUM_SAMPLES, _REPEATS):
        if flag.value < 1:
            raise ValueError(f"--{flag.name}={flag.value}: expected >= 1")
    out = _OUT.value
    os.makedirs(out, exist_ok=True)
    data = DataConfig(dataset=_DATASET.value, resolution=_RESOLUTION.value,
                      num_frames=_FRAMES.value, max_stride=_STRIDE.value)
    info = pipeline.dataset_info(data)
    clf_protocol = classifier_lib.protocol_for(data, info, _CLASSIFIER_STEPS.value)
    cache_root = _EVAL_CACHE.value
    clf_dir = (classifier_lib.shared_dir(cache_root, clf_protocol) if cache_root
               else os.path.join(out, "classifier"))
    clf, meta = classifier_lib.load_or_train(clf_protocol, clf_dir)
    eval_protocol = protocol.EvalProtocol(_NUM_SAMPLES.value, _REPEATS.value, 0, clf_protocol,
                                          meta["weights_sha256"])
    real = protocol.real_statistics(eval_protocol, clf, os.path.join(cache_root or out, "cache"))

    keras.utils.set_random_seed(_SEED.value)
    generator = make_generator(_RESOLUTION.value, _FRAMES.value, _WIDTH.value)
    discriminator = make_discriminator(_RESOLUTION.value, _FRAMES.value, _WIDTH.value)
    print(f"reference_gan: G {generator.count_params():,} parameters, "
          f"D {discriminator.count_params():,}; {_STEPS.value} steps of batch {_BATCH.value}",
          flush=True)
    step = _train_step(generator, discriminator,
                       keras.optimizers.Adam(_LR.value, beta_1=0.5, beta_2=0.999),
                       keras.optimizers.Adam(_LR.value, beta_1=0.5, beta_2=0.999),
                       _BATCH.value)
    batches = iter(pipeline.make_dataset(data, _BATCH.value, _SEED.value))
    curve_path = os.path.join(out, "curve.jsonl")
    with open(curve_path, "w"):
        pass
    start = time.time()
    for n in range(1, _STEPS.value + 1):
        d_loss, g_loss = step(next(batches)["video"])
        if n % _EVAL_EVERY.value == 0 or n == _STEPS.value:
            point = {"step": n, **_score(clf, _generate(generator, _EVAL_SAMPLES.value, 10 ** 6),
                                          real["a_features"]),
                     "seconds": round(time.time() - start, 1)}
            with open(curve_path, "a") as f:
                f.write(json.dumps(point) + "\n")
            eta = (time.time() - start) / n * (_STEPS.value - n) / 60
            print(f"step {n}/{_STEPS.value} | d_loss={float(d_loss):.3f} "
                  f"g_loss={float(g_loss):.3f} | FD {point['fd']:.1f} IS {point['is']:.2f} | "
                  f"ETA {eta:.1f} min", flush=True)

    n = _NUM_SAMPLES.value
    sets = [_generate(generator, n, r * n) for r in range(_REPEATS.value)]
    scores = [_score(clf, videos, real["a_features"]) for videos in sets]
    result = {"config": {"dataset": _DATASET.value, "resolution": _RESOLUTION.value,
                         "num_frames": _FRAMES.value, "steps": _STEPS.value,
                         "batch_size": _BATCH.value, "width": _WIDTH.value, "lr": _LR.value,
                         "seed": _SEED.value},
              "classifier_test_accuracy": meta["test_accuracy"],
              "real_fd": metrics.frechet_distance_from_features(real["a_features"],
                                                                real["b_features"]),
              "real_is": metrics.inception_score(real["a_action"])}
    for name in ("fd", "is"):
        mean, std = metrics.mean_std([s[name] for s in scores])
        result[name] = {"mean": mean, "std": std, "values": [s[name] for s in scores]}
    with errors.atomic_output(os.path.join(out, "result.json"), ".partial.json") as tmp:
        with open(tmp, "w") as f:
            json.dump(result, f, indent=2)
    viz.write_video_grid(os.path.join(out, "samples.png"), viz.to_uint8(sets[0][:8]))
    print(f"reference_gan: FD {result['fd']['mean']:.1f} +- {result['fd']['std']:.1f}, "
          f"IS {result['is']['mean']:.2f} +- {result['is']['std']:.2f} (real: FD "
          f"{result['real_fd']:.1f}, IS {result['real_is']:.2f}) -> {out}", flush=True)


if __name__ == "__main__":
    from absl import app
    app.run(main)
