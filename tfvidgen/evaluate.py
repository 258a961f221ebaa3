"""`python -m tfvidgen.evaluate --workdir=W [--num_samples=256 --repeats=3 --metrics=is,fd,...]`.

Samples the latest checkpoint of --workdir, or the export --saved_model (exactly one of them;
videos are scored on the uint8 grid the export serves, so both give the same numbers), classifies
the videos with the dataset's evaluation classifier (trained once on real training videos and
cached in --classifier_dir, default <eval dir>/classifier), and writes metrics.json, metrics.md
and TensorBoard scalars to the eval dir (<workdir>/eval, or <saved_model>/../eval-<version>
beside the export's versions), each metric as mean +- std over --repeats sample sets beside its
experimental bound (the same metric on real test videos) and mathematical bound. See tfvidgen/eval/protocol.py
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
import os

from absl import flags

from tfvidgen import cli, errors


def define_flags() -> None:
    cli.define_source_flags()        # results: <workdir>/eval, or <saved_model>/../eval-<version>
    flags.DEFINE_integer("num_samples", 256, "Generated videos per repeat.", lower_bound=2)
    flags.DEFINE_integer("repeats", 3, "Independent sample sets.", lower_bound=1)
    flags.DEFINE_list("metrics", ["is", "h_y", "h_y_given_v", "fd", "label_accuracy",
                                  "appearance_preservation", "motion_preservation",
                                  "label_effect"],
                      "Metrics to compute.")
    flags.DEFINE_string("classifier_dir", None, "Cache of the evaluation classifier.")
    flags.DEFINE_integer("classifier_steps", 400, "Training steps of a new classifier.",
                         lower_bound=1)
    cli.define_seed_flag("Sampling seed of the first repeat")
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
    args = cli.flag_values()
    from tfvidgen import sources
    from tfvidgen.eval import protocol
    unknown = sorted(set(args.metrics) - set(protocol.METRICS))
    if unknown:
        raise ValueError(f"--metrics: unknown {unknown}; valid: {list(protocol.METRICS)}")
    source = sources.source_from(args.workdir, args.saved_model)
    cli.check_seed(args.seed)
    fvd_network = fvd_protocol = None
    if args.fvd_model:                  # a bad network fails before any long work
        from tfvidgen.eval import fvd
        fvd_protocol = fvd.protocol_named(args.fvd_protocol, args.fvd_num_videos)
        fvd_network = fvd.load_network(args.fvd_model)
    from tfvidgen.data import pipeline
    from tfvidgen.eval import classifier as classifier_lib
    loaded = sources.load(source)
    gan, config, step = loaded
    if source.workdir:
        eval_dir = os.path.join(source.workdir, "eval")
        tensorboard_dir = os.path.join(source.workdir, "tensorboard")
    else:      # beside the version dirs; TF Serving ignores names that are not integers
        export = os.path.normpath(os.path.abspath(source.saved_model))
        eval_dir = os.path.join(os.path.dirname(export), "eval-" + os.path.basename(export))
        tensorboard_dir = os.path.join(eval_dir, "tensorboard")
    errors.check_output_dir("--workdir" if source.workdir else "--saved_model", eval_dir)
    if fvd_protocol is not None and gan.cfg.num_frames < fvd_protocol.num_frames:
        raise ValueError(f"--fvd_protocol={args.fvd_protocol} needs clips of "
                         f"{fvd_protocol.num_frames} frames; {config.model} generates "
                         f"{gan.cfg.num_frames}")
    d = config.data
    info = pipeline.dataset_info(d)
    if args.num_samples < min_samples(info["num_classes"]):
        errors.warn("evaluate", f"--num_samples={args.num_samples} is below "
                                f"{min_samples(info['num_classes'])} (8 per class, at least 32): "
                                f"IS, H(y) and FD from so few videos are mostly sampling noise")
    clf_protocol = classifier_lib.ClassifierProtocol(
        d.dataset, d.data_dir, d.resolution, d.num_frames, d.max_stride, info["num_classes"],
        info["num_identities"], steps=args.classifier_steps)
    from tfvidgen import hardware
    # float32 for the classifier whatever the hardware: trained in mixed_bfloat16 its loss went
    # to NaN within 60 steps on synthetic_shapes (and its numbers define the protocol).
    print(hardware.describe("float32", "float32"), flush=True)
    with _stage(f"evaluation classifier of {d.dataset}"):
        clf, clf_meta = classifier_lib.load_or_train(
            clf_protocol, args.classifier_dir or os.path.join(eval_dir, "classifier"))
    if classifier_lib.real_split(clf_protocol) == "train":
        errors.warn("evaluate", f"--data_dir={d.data_dir} has no test split: the real bounds and "
                                f"statistics come from training videos (optimistic); prepare it "
                                f"with --test_fraction=0.2")
    feature_fn, feature_sha = None, ""
    if args.feature_model:
        feature_fn, feature_sha = protocol.load_feature_model(args.feature_model)
    p = protocol.EvalProtocol(args.num_samples, args.repeats, args.seed, clf_protocol,
                              clf_meta["weights_sha256"], feature_sha)
    with _stage(f"real test statistics of {d.dataset}"):
        real = protocol.real_statistics(p, clf, os.path.join(eval_dir, "cache"), feature_fn)
    wanted = list(args.metrics) + (["fd_external"] if feature_fn else [])
    results = protocol.evaluate_model(gan, clf, p, real, wanted, feature_fn=feature_fn)
    if loaded.capabilities.transfer:            # image-to-video models (Dual-MTGAN)
        # Self-transfer and best-of-K need only real test clips (any dataset); motion transfer
        # across appearances needs the renderer's ground truth (synthetic_actions only).
        with _stage("image-to-video scores"):
            results.update(protocol.image_to_video_results(
                gan, d, args.transfer_videos, args.best_of, args.seed))
    record = {"step": step, "source": source.path,
              "protocol": dataclasses.asdict(p), "protocol_key": p.key(),
              "classifier_test_accuracy": clf_meta["test_accuracy"], "results": results}
    if fvd_network is not None:
        with _stage(f"reference FVD, protocol {fvd_protocol.name}"):
            results["fvd"], record["fvd"] = protocol.reference_fvd(
                fvd_network, fvd_protocol, gan, d, os.path.join(eval_dir, "cache"))
    print(protocol.write_report(eval_dir, tensorboard_dir, record))
    return 0


if __name__ == "__main__":
    define_flags()
    errors.run_app(main, "evaluate")
