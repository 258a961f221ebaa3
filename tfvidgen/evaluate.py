"""`python -m tfvidgen.evaluate --workdir=W [--num_samples=256 --repeats=3 --metrics=is,fd,...]`.

Samples the latest checkpoint (or, with --saved_model, an export: videos are scored on the uint8
grid the export serves, so both give the same numbers), classifies the videos with the dataset's
evaluation classifier (trained once on real training videos and cached in --classifier_dir,
default <workdir>/eval/classifier), and writes <workdir>/eval/metrics.json, metrics.md and
TensorBoard scalars, each metric as mean +- std over --repeats sample sets beside its experimental
bound (the same metric on real test videos) and mathematical bound. See tfvidgen/eval/protocol.py
for the definitions.
"""

import dataclasses
import json
import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS


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
                                  "appearance_preservation"], "Metrics to compute.")
    flags.DEFINE_string("classifier_dir", None, "Cache of the evaluation classifier.")
    flags.DEFINE_integer("classifier_steps", 400, "Training steps of a new classifier.",
                         lower_bound=1)
    flags.DEFINE_integer("seed", 0, "Sampling seed of the first repeat.")
    flags.DEFINE_enum("mixed_precision", "auto", ["auto", "float32", "mixed_bfloat16"],
                      "Keras policy for training a new evaluation classifier (auto: bfloat16 only "
                      "where the hardware has it); scoring is always float32.")
    flags.DEFINE_string("feature_model", None, "SavedModel dir of a video feature extractor (e.g. "
                        "an I3D you exported) for FVD-style fd_external.")


def _write_atomically(path: str, text: str) -> None:
    """A crash mid-write leaves the previous result in place."""
    with open(path + ".partial", "w") as f:
        f.write(text)
    os.replace(path + ".partial", path)


def main(argv):
    del argv
    from tfvidgen.eval import protocol
    unknown = sorted(set(FLAGS.metrics) - set(protocol.METRICS))
    if unknown:
        print(f"evaluate: error: --metrics: unknown {unknown}; valid: {list(protocol.METRICS)}",
              file=sys.stderr)
        return 2
    if not FLAGS.workdir and not FLAGS.saved_model:
        print("evaluate: error: give --workdir and/or --saved_model", file=sys.stderr)
        return 2
    import tensorflow as tf

    from tfvidgen.data import pipeline
    from tfvidgen.eval import classifier as classifier_lib
    from tfvidgen.exported import load_generator
    try:
        gan, config, step = load_generator(None if FLAGS.saved_model else FLAGS.workdir,
                                           FLAGS.saved_model)
    except (FileNotFoundError, ValueError) as e:
        print(f"evaluate: error: {e}", file=sys.stderr)
        return 2
    if FLAGS.workdir:
        eval_dir = os.path.join(FLAGS.workdir, "eval")
        tensorboard_dir = os.path.join(FLAGS.workdir, "tensorboard")
    else:      # beside the version dirs; TF Serving ignores names that are not integers
        export = os.path.normpath(os.path.abspath(FLAGS.saved_model))
        eval_dir = os.path.join(os.path.dirname(export), "eval-" + os.path.basename(export))
        tensorboard_dir = os.path.join(eval_dir, "tensorboard")
    d = config.data
    info = pipeline.dataset_info(d)
    clf_protocol = classifier_lib.ClassifierProtocol(
        d.dataset, d.data_dir, d.resolution, d.num_frames, d.max_stride, info["num_classes"],
        info["num_identities"], steps=FLAGS.classifier_steps)
    from tfvidgen import hardware
    precision = hardware.choose_precision(FLAGS.mixed_precision)
    clf, clf_meta = classifier_lib.load_or_train(
        clf_protocol, FLAGS.classifier_dir or os.path.join(eval_dir, "classifier"),
        precision=precision)
    feature_fn, feature_sha = None, ""
    if FLAGS.feature_model:
        try:
            feature_fn, feature_sha = protocol.load_feature_model(FLAGS.feature_model)
        except FileNotFoundError as e:
            print(f"evaluate: error: {e}", file=sys.stderr)
            return 2
    p = protocol.EvalProtocol(FLAGS.num_samples, FLAGS.repeats, FLAGS.seed, clf_protocol,
                              clf_meta["weights_sha256"], feature_sha)
    real = protocol.real_statistics(p, clf, os.path.join(eval_dir, "cache"), feature_fn)
    wanted = list(FLAGS.metrics) + (["fd_external"] if feature_fn else [])
    results = protocol.evaluate_model(gan, clf, p, real, wanted, feature_fn=feature_fn)
    record = {"step": step, "source": FLAGS.saved_model or FLAGS.workdir,
              "protocol": dataclasses.asdict(p), "protocol_key": p.key(),
              "classifier_test_accuracy": clf_meta["test_accuracy"], "results": results}
    table = protocol.markdown_table(results)
    _write_atomically(os.path.join(eval_dir, "metrics.json"),
                      json.dumps(record, indent=2, sort_keys=True))
    _write_atomically(os.path.join(eval_dir, "metrics.md"),
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
    app.run(main)
