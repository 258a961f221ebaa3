"""`python -m tfvidgen.explain --workdir=W --view=VIEW --num_videos=4 --output=explain.gif`.

Shows why a trained model's discriminators or the evaluation classifier decide as they do, and
what the model's internal controls do (tfvidgen.explain_lib has the views). Each video is written
with one heat-map overlay per panel (e.g. video D, image D): side by side and animated (.gif,
.mp4), or as rows of frames (.png: the video's frames, then one row per panel); --tensorboard also
writes the rows as a TensorBoard image under <workdir>/tensorboard/explain.
  --view=saliency_d          SmoothGrad saliency of each discriminator's realness score, on
                             generated videos, or real ones with --real
  --view=gradcam_classifier  Grad-CAM (or --cam=scorecam) of the evaluation classifier's
                             predicted action and identity (train it first with
                             `python -m tfvidgen.evaluate --workdir=W`)
  --view=<model view>        what the model declares, e.g. G3AN's `attention` (F-SA maps)

Errors (one `explain: error:` line, exit 2, nothing written): an --output that is not a
.gif/.mp4/.png file name or cannot be written, a workdir without checkpoints, a view the model
does not have (the line lists the ones it has), a workdir without an evaluation classifier.
"""

from __future__ import annotations

import os

import numpy as np
from absl import flags

from tfvidgen import cli, errors, viz


def define_flags() -> None:
    """Defines this entry point's flags (only when run as a program)."""
    cli.define_source_flags(exports=False)
    flags.DEFINE_string("view", None, "saliency_d, gradcam_classifier or a view the model "
                        "declares (a wrong name lists the model's views).", required=True)
    flags.DEFINE_integer("num_videos", 4, "How many videos.", lower_bound=1, upper_bound=64)
    cli.define_seed_flag("Seed of the generated videos (or of the real clips)")
    flags.DEFINE_integer("label", None, "Class label for conditional models (default: cycle).")
    flags.DEFINE_bool("real", False, "Explain real training clips instead of generated ones "
                      "(saliency_d, gradcam_classifier).")
    flags.DEFINE_integer("smooth_samples", 20, "SmoothGrad noisy copies per video.",
                         lower_bound=0)
    flags.DEFINE_float("smooth_noise", 0.2, "SmoothGrad noise scale (fraction of the value "
                       "range).", lower_bound=0.0)
    flags.DEFINE_enum("cam", "gradcam", ["gradcam", "scorecam"], "gradcam_classifier method.")
    flags.DEFINE_string("classifier_dir", None, "Evaluation classifier (default: "
                        "<workdir>/eval/classifier, where `tfvidgen.evaluate` trains it).")
    cli.define_output_flags("explain.gif")
    flags.DEFINE_bool("tensorboard", False, "Also write the grid to TensorBoard "
                      "(<workdir>/tensorboard/explain).")
    flags.DEFINE_integer("scale", 1, "Enlarge the output by this factor (nearest).",
                         lower_bound=1, upper_bound=16)


def explain(model, config, view: str, num_videos: int, seed: int, labels=None,
            real: bool = False, workdir: str = "", classifier_dir: str | None = None,
            cam: str = "gradcam",
            smooth_samples: int = 20, smooth_noise: float = 0.2, log=print) -> tuple:
    """(videos uint8 [N, T, H, W, 3], {panel: maps [N, T, H, W] in [0, 1]}) of `view`.

    Raises ValueError for a view the model does not have, FileNotFoundError for a missing
    classifier."""
    import tensorflow as tf

    from tfvidgen import explain_lib, sources

    views = explain_lib.available_views(model)
    if view not in views:
        raise ValueError(f"--view={view}: {config.model} has no such view; it has "
                         + ", ".join(f"{name} ({help_})" for name, help_ in views.items()))
    if real and view not in explain_lib.COMMON_VIEWS:
        raise ValueError(f"--real: the {view} view explains the generator, not real clips")
    classifier = None
    if view == "gradcam_classifier":       # checked before any generation: a quick error
        classifier = _classifier(classifier_dir or os.path.join(workdir, "eval", "classifier"),
                                 workdir, model)
    labels = None if labels is None else tf.constant(labels, tf.int32)
    if view in explain_lib.COMMON_VIEWS:
        if real:
            from tfvidgen.data import pipeline
            batch = next(iter(pipeline.make_dataset(config.data, num_videos, seed)))
            videos = batch["video"]
            labels = batch["label"] if model.cfg.conditional else None
        else:
            videos = model.generate(sources.seeded_inputs(model, num_videos, seed, labels),
                                    training=False)
        log(f"[explain] {view} on {num_videos} {'real' if real else 'generated'} videos")
        if view == "saliency_d":
            panels = explain_lib.discriminator_saliency(
                model, videos.numpy(), None if labels is None else labels.numpy(),
                smooth_samples, smooth_noise)
        else:
            maps, predicted = explain_lib.classifier_cam(classifier, videos.numpy(), cam)
            panels = {f"{head} (predicted {', '.join(map(str, predicted[head].tolist()))})": m
                      for head, m in maps.items()}
    else:
        _, fn = model.explain_views()[view]
        videos, panels = fn(sources.seeded_inputs(model, num_videos, seed, labels))
        panels = {name: np.asarray(m, np.float32) for name, m in panels.items()}
    return viz.to_uint8(np.asarray(videos)), panels


def _classifier(directory: str, workdir: str, model):
    from tfvidgen.eval import classifier as classifier_lib
    try:
        classifier, meta = classifier_lib.load(directory)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no evaluation classifier in {directory}: train it with `python -m "
            f"tfvidgen.evaluate --workdir={workdir}` (or give --classifier_dir)") from None
    p = meta["protocol"]
    expected = (model.cfg.num_frames, model.cfg.resolution)
    if (p["num_frames"], p["resolution"]) != expected:
        raise ValueError(f"the classifier in {directory} takes {p['num_frames']} frames at "
                         f"{p['resolution']}px, the model makes {expected[0]} at {expected[1]}px")
    return classifier


@errors.main_guard("explain")
def main(argv):
    del argv
    args = cli.flag_values()
    from tfvidgen import sources
    source = sources.source_from(args.workdir, exports=False)
    cli.check_seed(args.seed)
    cli.check_output(args.output)
    import keras

    from tfvidgen import explain_lib

    model, config, step = sources.load(source)
    keras.utils.disable_interactive_logging()           # Score-CAM's predict() progress bars
    labels = sources.labels_for(model.cfg, args.label, args.num_videos)
    videos, panels = explain(model, config, args.view, args.num_videos, args.seed, labels,
                             args.real, args.workdir, args.classifier_dir, args.cam,
                             args.smooth_samples, args.smooth_noise)
    if args.scale > 1:                   # nearest: each pixel (and map cell) stays a block
        zoom = lambda a: a.repeat(args.scale, axis=2).repeat(args.scale, axis=3)
        videos, panels = zoom(videos), {k: zoom(v) for k, v in panels.items()}
    if args.output.lower().endswith(".png"):        # rows: frames, then each panel's overlays
        viz.write_video_grid(args.output, explain_lib.stacked(videos, panels))
    else:                                            # animated: frames | overlays, side by side
        viz.write_video_grid(args.output, explain_lib.side_by_side(videos, panels),
                             fps=args.fps, columns=1)
    if args.tensorboard:
        _write_tensorboard(args.workdir, explain_lib.stacked(videos, panels), args.view, step)
    print(f"wrote {args.view} of {len(videos)} videos (columns: frames | "
          f"{' | '.join(panels)}) from {args.workdir} (step {step}) to {args.output}")
    return 0


def _write_tensorboard(workdir: str, grid: np.ndarray, view: str, step: int) -> None:
    import tensorflow as tf
    writer = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard", "explain"))
    with writer.as_default():
        tf.summary.image(f"explain/{view}", viz.frame_strip_grid(grid)[None], step=step)
    writer.flush()


if __name__ == "__main__":
    define_flags()
    errors.run_app(main, "explain")
