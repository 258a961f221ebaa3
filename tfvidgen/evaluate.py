"""`python -m tfvidgen.evaluate --workdir=W [--num_samples=256 --repeats=3 --metrics=is,fd,...]`.

Samples the latest checkpoint (or, with --saved_model, an export: videos are scored on the uint8
grid the export serves, so both give the same numbers), classifies the videos with the dataset's
evaluation classifier (trained once on real training videos and cached in --classifier_dir,
default <workdir>/eval/classifier), and writes <workdir>/eval/metrics.json, metrics.md and
TensorBoard scalars, each metric as mean +- std over --repeats sample sets beside its experimental
bound (the same metric on real test videos) and mathematical bound. See tfvidgen/eval/protocol.py
for the definitions. With --fvd_model, also the reference FVD (tfvidgen/eval/fvd.py): the
I3D network from disk, a named protocol (--fvd_protocol, --fvd_num_videos) spelled out in
metrics.json with the network's sha256. Image-to-video models (Dual-MTGAN) also get self-transfer
and best-of-K PSNR/SSIM on --transfer_videos real test clips of any dataset, and motion-transfer
PSNR/SSIM on synthetic_actions (tfvidgen/eval/transfer.py).

Errors (a bad flag, an unreadable export, no real data for the classifier or the real statistics,
an --workdir/eval that cannot be written) end in one `evaluate: error:` line and exit 2
(tfvidgen.errors). --num_samples below max(32, 8 x classes) gives a `evaluate: warning:` line and
goes on: the entropies behind IS and H(y) are estimated from the sample's class histogram, whose
plug-in entropy is biased low by about (classes - 1) / (2 N) nats (Miller-Madow), i.e. under 1/16
nat at 8 videos per class; and FD's feature covariances from fewer than 32 videos are mostly noise.
"""

import contextlib
import dataclasses
import json
import os

from absl import flags

from tfvidgen import errors

FLAGS = flags.FLAGS
#: the protocol offsets --seed by repeats x samples and by fixed offsets below 1e7; seeds up to
#: 2**62 leave all of that inside int64
_MAX_SEED = 2 ** 62


def define_flags() -> None:
    flags.DEFINE_string("workdir", None, "Training workdir to evaluate; results go to "
                        "<workdir>/eval.")
    flags.DEFINE_string("saved_model", None, "Evaluate this export (export/<model>/<version>) "
                        "instead of the workdir's latest checkpoint; results still go to "
                        "<workdir>/eval when --workdir is given, else to <saved_model>/../eval-"
                        "<version>.")
    flags.DEFINE_integer("num_samples", 256, "Generated videos per repeat.", lower_bound=2)
    flags.DEFINE_integer("repeats", 3, "Independent sample sets.", lower_bound=1)
    flags.DEFINE_list("metrics", ["is", "h_y", "h_y_given_v", "fd", "label_accuracy",
                                  "appearance_preservation", "motion_preservation"],
                      "Metrics to compute.")
    flags.DEFINE_string("classifier_dir", None, "Cache of the evaluation classifier.")
    flags.DEFINE_integer("classifier_steps", 400, "Training steps of a new classifier.",
                         lower_bound=1)
    flags.DEFINE_integer("seed", 0, "Sampling seed of the first repeat.")
    flags.DEFINE_string("fvd_model", None, "Directory of the I3D network (TF2 SavedModel or "
                        "TF1 hub module, e.g. deepmind/i3d-kinetics-400/1 copied to disk): adds "
                        "the reference FVD (tfvidgen/eval/fvd.py).")
    flags.DEFINE_enum("fvd_protocol", "fvd2048_16f", ["fvd2048_16f", "fvd256_16f"],
                      "Reference FVD protocol: clip counts, 16 consecutive frames at stride 1.")
    flags.DEFINE_integer("fvd_num_videos", None, "Custom FVD clip count (fake and real) instead "
                         "of the protocol's.", lower_bound=2)
    flags.DEFINE_integer("transfer_videos", 64, "Image-to-video models: real test clips for "
                         "self-transfer and best-of-K PSNR/SSIM (and, on synthetic_actions, "
                         "exact triples for motion-transfer PSNR/SSIM).", lower_bound=1)
    flags.DEFINE_integer("best_of", 25, "K of the best-of-K PSNR/SSIM of stochastic generation "
                         "(the Dual-MTGAN paper: 25); headline: the best video by mean SSIM.",
                         lower_bound=1)
    flags.DEFINE_string("feature_model", None, "SavedModel dir of a video feature extractor (e.g. "
                        "an I3D you exported) for FVD-style fd_external.")


def min_samples(num_classes: int) -> int:
    """Smallest --num_samples without a warning (see the module docstring for why)."""
    return max(32, 8 * num_classes)


@contextlib.contextmanager
def _stage(what: str):
    """Prefixes the one-line error of an ordinary failure with the stage it happened in."""
    import tensorflow as tf
    try:
        yield
    except (StopIteration, tf.errors.OutOfRangeError) as e:  # its datasets repeat: ending = empty
        raise ValueError(f"{what}: the data yielded no videos (an empty split?)") from e
    except Exception as e:          # noqa: BLE001 -- bugs (describe() is None) keep their traceback
        message = errors.describe(e)
        if message is None:
            raise
        raise ValueError(f"{what}: {message}") from e


@errors.main_guard("evaluate")
def main(argv):
    del argv
    from tfvidgen.eval import protocol
    unknown = sorted(set(FLAGS.metrics) - set(protocol.METRICS))
    if unknown:
        raise ValueError(f"--metrics: unknown {unknown}; valid: {list(protocol.METRICS)}")
    if not FLAGS.workdir and not FLAGS.saved_model:
        raise ValueError("give --workdir and/or --saved_model")
    if not 0 <= FLAGS.seed <= _MAX_SEED:
        raise ValueError(f"--seed={FLAGS.seed} is outside [0, 2**62]")
    fvd_network = fvd_protocol = None
    if FLAGS.fvd_model:                  # a bad network fails before any long work
        from tfvidgen.eval import fvd
        fvd_protocol = fvd.protocol_named(FLAGS.fvd_protocol, FLAGS.fvd_num_videos)
        fvd_network = fvd.load_network(FLAGS.fvd_model)
    import tensorflow as tf

    from tfvidgen.data import pipeline
    from tfvidgen.eval import classifier as classifier_lib
    from tfvidgen.exported import load_generator
    gan, config, step = load_generator(None if FLAGS.saved_model else FLAGS.workdir,
                                       FLAGS.saved_model)
    if FLAGS.workdir:
        eval_dir = os.path.join(FLAGS.workdir, "eval")
        tensorboard_dir = os.path.join(FLAGS.workdir, "tensorboard")
    else:      # beside the version dirs; TF Serving ignores names that are not integers
        export = os.path.normpath(os.path.abspath(FLAGS.saved_model))
        eval_dir = os.path.join(os.path.dirname(export), "eval-" + os.path.basename(export))
        tensorboard_dir = os.path.join(eval_dir, "tensorboard")
    errors.check_output_dir("--workdir" if FLAGS.workdir else "--saved_model", eval_dir)
    if fvd_protocol is not None and gan.cfg.num_frames < fvd_protocol.num_frames:
        raise ValueError(f"--fvd_protocol={FLAGS.fvd_protocol} needs clips of "
                         f"{fvd_protocol.num_frames} frames; {config.model} generates "
                         f"{gan.cfg.num_frames}")
    d = config.data
    info = pipeline.dataset_info(d)
    if FLAGS.num_samples < min_samples(info["num_classes"]):
        errors.warn("evaluate", f"--num_samples={FLAGS.num_samples} is below "
                                f"{min_samples(info['num_classes'])} (8 per class, at least 32): "
                                f"IS, H(y) and FD from so few videos are mostly sampling noise")
    clf_protocol = classifier_lib.ClassifierProtocol(
        d.dataset, d.data_dir, d.resolution, d.num_frames, d.max_stride, info["num_classes"],
        info["num_identities"], steps=FLAGS.classifier_steps)
    from tfvidgen import hardware
    # float32 for the classifier whatever the hardware: trained in mixed_bfloat16 its loss went
    # to NaN within 60 steps on synthetic_shapes (and its numbers define the protocol).
    print(hardware.describe("float32", "float32"), flush=True)
    with _stage(f"evaluation classifier of {d.dataset}"):
        clf, clf_meta = classifier_lib.load_or_train(
            clf_protocol, FLAGS.classifier_dir or os.path.join(eval_dir, "classifier"))
    if classifier_lib.real_split(clf_protocol) == "train":
        errors.warn("evaluate", f"--data_dir={d.data_dir} has no test split: the real bounds and "
                                f"statistics come from training videos (optimistic); prepare it "
                                f"with --test_fraction=0.2")
    feature_fn, feature_sha = None, ""
    if FLAGS.feature_model:
        feature_fn, feature_sha = protocol.load_feature_model(FLAGS.feature_model)
    p = protocol.EvalProtocol(FLAGS.num_samples, FLAGS.repeats, FLAGS.seed, clf_protocol,
                              clf_meta["weights_sha256"], feature_sha)
    with _stage(f"real test statistics of {d.dataset}"):
        real = protocol.real_statistics(p, clf, os.path.join(eval_dir, "cache"), feature_fn)
    wanted = list(FLAGS.metrics) + (["fd_external"] if feature_fn else [])
    results = protocol.evaluate_model(gan, clf, p, real, wanted, feature_fn=feature_fn)
    if hasattr(gan, "transfer"):            # image-to-video models (Dual-MTGAN)
        # Self-transfer and best-of-K need only real test clips (any dataset); motion transfer
        # across appearances needs the renderer's ground truth (synthetic_actions only).
        with _stage("image-to-video scores"):
            results.update(protocol.image_to_video_results(
                gan, d, FLAGS.transfer_videos, FLAGS.best_of, FLAGS.seed))
    record = {"step": step, "source": FLAGS.saved_model or FLAGS.workdir,
              "protocol": dataclasses.asdict(p), "protocol_key": p.key(),
              "classifier_test_accuracy": clf_meta["test_accuracy"], "results": results}
    if fvd_network is not None:
        with _stage(f"reference FVD, protocol {fvd_protocol.name}"):
            real = fvd.real_features(fvd_network, d, fvd_protocol, os.path.join(eval_dir, "cache"))
            value = fvd.frechet_distance(fvd.fake_features(fvd_network, gan, fvd_protocol), real)
        results["fvd"] = {"mean": value, "std": 0.0, "values": [value],
                          "experimental_bound": None, "mathematical_bound": 0.0,
                          "better": "lower"}
        record["fvd"] = {"value": value, "protocol": dataclasses.asdict(fvd_protocol),
                         "generator_resolution": d.resolution,
                         "network": os.path.abspath(FLAGS.fvd_model),
                         "network_sha256": fvd_network.sha256,
                         "signature": fvd_network.signature_name,
                         "network_input_size": fvd_network.size}
    table = protocol.markdown_table(results)
    errors.write_text_atomically(os.path.join(eval_dir, "metrics.json"),
                                 json.dumps(record, indent=2, sort_keys=True))
    errors.write_text_atomically(os.path.join(eval_dir, "metrics.md"),
                                 f"Step {step}, classifier real test accuracy "
                                 f"{clf_meta['test_accuracy']:.3f}\n\n{table}\n")
    writer = tf.summary.create_file_writer(tensorboard_dir)
    with writer.as_default(step=step):
        for name, r in results.items():
            tf.summary.scalar(f"eval/{name}", r["mean"])
    print(table)
    return 0


if __name__ == "__main__":
    define_flags()
    errors.run_app(main, "evaluate")
