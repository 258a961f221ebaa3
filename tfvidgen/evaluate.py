"""`python -m tfvidgen.evaluate --workdir=W [--num_samples=256 --repeats=3 --metrics=is,fd,...]`.

Samples the latest checkpoint, classifies the videos with the dataset's evaluation classifier
(trained once on real training videos and cached in --classifier_dir, default <workdir>/eval/
classifier), and writes <workdir>/eval/metrics.json, metrics.md and TensorBoard scalars, each
metric as mean +- std over --repeats sample sets beside its experimental bound (the same metric on
real test videos) and mathematical bound. See tfvidgen/eval/protocol.py for the definitions.
"""

import dataclasses
import json
import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("workdir", None, "Training workdir to evaluate.")
    flags.DEFINE_integer("num_samples", 256, "Generated videos per repeat.", lower_bound=2)
    flags.DEFINE_integer("repeats", 3, "Independent sample sets.", lower_bound=1)
    flags.DEFINE_list("metrics", ["is", "h_y", "h_y_given_v", "fd", "label_accuracy",
                                  "appearance_preservation"], "Metrics to compute.")
    flags.DEFINE_string("classifier_dir", None, "Cache of the evaluation classifier.")
    flags.DEFINE_integer("classifier_steps", 400, "Training steps of a new classifier.",
                         lower_bound=1)
    flags.DEFINE_integer("seed", 0, "Sampling seed of the first repeat.")
    flags.DEFINE_string("feature_model", None, "SavedModel dir of a video feature extractor (e.g. "
                        "an I3D you exported) for FVD-style fd_external.")


def main(argv):
    del argv
    from tfvidgen.eval import protocol
    unknown = sorted(set(FLAGS.metrics) - set(protocol.METRICS))
    if unknown:
        print(f"evaluate: error: --metrics: unknown {unknown}; valid: {list(protocol.METRICS)}",
              file=sys.stderr)
        return 2
    if not FLAGS.workdir:
        print("evaluate: error: --workdir is required", file=sys.stderr)
        return 2
    import tensorflow as tf

    from tfvidgen import train_lib
    from tfvidgen.data import pipeline
    from tfvidgen.eval import classifier as classifier_lib
    try:
        gan, config, step = train_lib.build_for_inference(FLAGS.workdir)
    except (FileNotFoundError, ValueError) as e:
        print(f"evaluate: error: {e}", file=sys.stderr)
        return 2
    d = config.data
    info = pipeline.dataset_info(d)
    clf_protocol = classifier_lib.ClassifierProtocol(
        d.dataset, d.data_dir, d.resolution, d.num_frames, d.max_stride, info["num_classes"],
        info["num_identities"], steps=FLAGS.classifier_steps)
    eval_dir = os.path.join(FLAGS.workdir, "eval")
    clf, clf_meta = classifier_lib.load_or_train(
        clf_protocol, FLAGS.classifier_dir or os.path.join(eval_dir, "classifier"))
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
    record = {"step": step, "protocol": dataclasses.asdict(p), "protocol_key": p.key(),
              "classifier_test_accuracy": clf_meta["test_accuracy"], "results": results}
    with open(os.path.join(eval_dir, "metrics.json"), "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
    table = protocol.markdown_table(results)
    with open(os.path.join(eval_dir, "metrics.md"), "w") as f:
        f.write(f"Step {step}, classifier real test accuracy {clf_meta['test_accuracy']:.3f}\n\n"
                + table + "\n")
    writer = tf.summary.create_file_writer(os.path.join(FLAGS.workdir, "tensorboard"))
    with writer.as_default(step=step):
        for name, r in results.items():
            tf.summary.scalar(f"eval/{name}", r["mean"])
    print(table)
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
