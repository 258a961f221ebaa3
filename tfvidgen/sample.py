"""`python -m tfvidgen.sample --workdir=W --num_videos=8 --seed=0 --output=samples.gif`.

Writes videos from a workdir's latest checkpoint (the EMA generator when training kept one), or
from an export (`--saved_model`: the same videos for the same flags), as an animated GIF grid, an
MP4 grid, or a PNG frame grid (one row per video).
  --fix=appearance   every video shares the appearance latent(s), motion varies
  --fix=motion       every video shares the motion (and noise) latent(s), appearance varies
  --fix=grid         rows share appearance, columns share motion (a sqrt(N) x sqrt(N) grid)
  --interpolate=appearance|motion|both   N steps from the latents of --seed to those of --seed+1
  --label=K          class for conditional models (default: cycle through the classes)
  --image=FILE       image-to-video models (Dual-MTGAN): every video animates this image
                     (default: the first frames of synthetic_actions videos --seed, --seed+1, ..)
  --num_frames=L     videos of L frames instead of the trained length, on models with the
                     variable_length capability (InMoDeGAN, MVT-TSA, TwoStreamVAN, Dual-MTGAN);
                     from an export, through its `sample_frames` signature
  --directions=ITEM  (repeatable) direction control of models with a motion dictionary
                     (InMoDeGAN): off:I[,J..], only:I[,J..], scale:I:F, drive:I:p1,p2,..,
                     rank[:N] (prints the directions ranked by the variance of their magnitudes
                     over N samples), phi:I[,J..][:N] (prints the optical-flow change Delta phi
                     when each direction is deactivated, paper Tab. 4); see tfvidgen/control.py

Requests that cannot take effect are errors (one `sample: error:` line naming the flag, exit 2,
nothing written); these are checked before any model is loaded: not exactly one of --workdir /
--saved_model, --fix together with --interpolate, a --seed outside [0, 2**62], a malformed
--directions item or --directions with --saved_model, --num_frames with --fix/--interpolate on
an export, and an --output that is not a .gif/.mp4/.png file name or cannot be written (a
directory, a file in the way of its folder, a read-only file system); once it is loaded:
--label on an unconditional model, --num_frames on a model of fixed length (G3AN),
--directions on a model without a motion dictionary, --image on a model without an image input.
A request that can only be met approximately goes on with a `sample: warning:` line: --fix=grid
needs a square number of videos, so a non-square --num_videos is rounded UP to the next square
(3 -> 2x2 = 4 videos). An export serves at most its max serving batch per call; larger requests
are split into several calls (same videos). The output is written as <output>.partial and
renamed when complete; on failure nothing is left.
"""

from __future__ import annotations

from absl import flags

from tfvidgen import cli, errors, sampling, sources, viz


def define_flags() -> None:
    """Defines this entry point's flags (only when run as a program)."""
    cli.define_source_flags()
    flags.DEFINE_integer("num_videos", 8, "How many videos.", lower_bound=1)
    cli.define_seed_flag("Sampling seed: videos use seeds --seed, --seed+1, ..")
    flags.DEFINE_integer("label", None, "Class label for conditional models.")
    flags.DEFINE_string("image", None, "Image-to-video models: animate this image (any size, "
                        "centre-cropped and resized like the training data) instead of the "
                        "synthetic first frames; every video starts from it.")
    flags.DEFINE_enum("fix", "none", ["none", "appearance", "motion", "grid"],
                      "Share latents across videos to show disentanglement.")
    flags.DEFINE_enum("interpolate", "none", ["none", "appearance", "motion", "both"],
                      "Interpolate between the latents of --seed and --seed+1.")
    cli.define_output_flags("samples.gif")
    flags.DEFINE_integer("num_frames", None, "Frames per video (default: the trained length).",
                         lower_bound=2)
    flags.DEFINE_multi_string("directions", None, "Direction control (repeatable): off:I[,J..], "
                              "only:I[,J..], scale:I:F, drive:I:p1,p2,.., rank[:N], "
                              "phi:I[,J..][:N].")


@errors.main_guard("sample")
def main(argv):
    del argv
    args = cli.flag_values()
    source = sources.source_from(args.workdir, args.saved_model)
    n = sampling.check_request(args.num_videos, args.seed, args.fix, args.interpolate,
                               args.directions, args.num_frames, args.saved_model)
    cli.check_output(args.output)
    loaded = sources.load(source)
    request = sampling.model_control(loaded, args.directions)
    sources.check_num_frames(loaded, args.num_frames)
    labels = sources.labels_for(loaded.generator.cfg, args.label, n)
    images = sampling.given_images(loaded, args.image, n)
    if request is not None and request.rank_samples:
        sampling.print_direction_ranking(loaded.generator, request.rank_samples, args.seed,
                                         args.label)
    if request is not None and request.phi_directions:
        sampling.print_delta_phi(loaded.generator, request, args.seed, args.label)
    videos, columns = sampling.videos(loaded, n, args.seed, labels, images, args.fix,
                                      args.interpolate, args.num_frames, request)
    videos = viz.to_uint8(videos.numpy())
    viz.write_video_grid(args.output, videos, fps=args.fps, columns=columns)
    print(f"wrote {len(videos)} videos of {videos.shape[1]} frames at {videos.shape[2]}x"
          f"{videos.shape[3]} from {source.path} (step {loaded.step}) to {args.output}")
    return 0


if __name__ == "__main__":
    define_flags()
    errors.run_app(main, "sample")
