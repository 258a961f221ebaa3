"""`python -m tfvidgen.transfer --workdir=W --image=a.png --video=b.mp4 --output=out.gif`.

Deterministic motion transfer with an image-to-video model (Dual-MTGAN): the image's appearance
doing the video's motion, from a workdir or from an export (--saved_model, its `transfer`
signature). Any image size: the image and the video's frames are centre-cropped to a square and
resized to the model's resolution, as tools/prepare_dataset.py prepares training data
(tfvidgen.media); the video's first num_frames frames are used (a shorter video repeats its last
frame, as the data pipeline does). --compare writes three columns: source | target image |
result.

Errors are one `transfer: error:` line, exit 2: a missing or unreadable --image or --video (a
file that is not an image names --image), an --output that is not a .gif/.mp4/.png name, a
model that does no motion transfer.
"""

from __future__ import annotations

import os

import numpy as np
from absl import flags

from tfvidgen import cli, errors, media, viz

__all__ = ["transfer_files"]


def define_flags() -> None:
    cli.define_source_flags()
    flags.DEFINE_string("image", None, "Target image (any size; png, jpg, ...).")
    flags.DEFINE_string("video", None, "Source video whose motion is transferred (mp4, gif, "
                                       "...).")
    cli.define_output_flags("transfer.gif")
    flags.DEFINE_integer("label", None, "Class label for conditional models.")
    flags.DEFINE_bool("compare", False, "Write source | target image | result side by side.")


def transfer_files(model, image_path: str, video_path: str, label=None):
    """(source [1, T, R, R, 3], image [1, R, R, 3], result [1, T, R, R, 3]), all in [-1, 1]."""
    import tensorflow as tf
    cfg = model.cfg
    image = media.load_image(image_path, cfg.resolution)[None]
    video = media.load_video(video_path, cfg.resolution, cfg.num_frames)[None]
    labels = None
    if cfg.conditional:
        labels = tf.constant([0 if label is None else label], tf.int32)
    result = np.asarray(model.transfer(tf.constant(image), tf.constant(video), labels))
    return video, image, result


@errors.main_guard("transfer")
def main(argv):
    del argv
    args = cli.flag_values()
    from tfvidgen import sources
    source = sources.source_from(args.workdir, args.saved_model)
    for name in ("image", "video"):
        if not getattr(args, name):
            raise ValueError(f"--{name} is required")
    cli.check_output(args.output)
    for name in ("image", "video"):
        if not os.path.isfile(getattr(args, name)):
            raise ValueError(f"--{name}={getattr(args, name)!r}: no such file")
    loaded = sources.load(source)
    model = loaded.generator
    if not loaded.capabilities.transfer:
        raise ValueError(f"--{'saved_model' if source.saved_model else 'workdir'}="
                         f"{source.path!r} holds a {loaded.config.model} model, which does no "
                         f"motion transfer (train an image-to-video model: --model=dual_mtgan)")
    if args.label is not None and not (model.cfg.conditional
                                       and 0 <= args.label < model.cfg.num_classes):
        raise ValueError(f"--label={args.label}: the model is not conditional or has no such "
                         f"class")
    source_video, image, result = transfer_files(model, args.image, args.video, args.label)
    videos = result
    if args.compare:
        still = np.repeat(image[:, None], source_video.shape[1], axis=1)
        videos = np.concatenate([source_video, still, result])
    viz.write_video_grid(args.output, viz.to_uint8(videos), args.fps, columns=len(videos))
    print(f"wrote the transfer (step {loaded.step}) to {os.path.abspath(args.output)}")
    return 0


if __name__ == "__main__":
    define_flags()
    errors.run_app(main, "transfer")
