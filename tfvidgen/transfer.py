"""`python -m tfvidgen.transfer --workdir=W --image=a.png --video=b.mp4 --output=out.gif`.

Deterministic motion transfer with an image-to-video model (Dual-MTGAN): the image's appearance
doing the video's motion. Any image size: the image and the video's frames are centre-cropped to
a square and resized to the model's resolution, as tools/prepare_dataset.py prepares training
data; the video's first num_frames frames are used (a shorter video repeats its last frame, as
the data pipeline does). --compare writes three columns: source | target image | result.

Errors are one `transfer: error:` line, exit 2: a missing or unreadable --image or --video (a
file that is not an image names --image), an --output that is not a .gif/.mp4/.png name, a
workdir whose model does no motion transfer.

load_image / load_video are the library functions behind it (the serving client uses them too).
"""

from __future__ import annotations

import os

import numpy as np
from absl import flags

from tfvidgen import errors, viz
from tfvidgen.data.frames import center_crop_resize

__all__ = ["load_image", "load_video", "transfer_files"]

FLAGS = flags.FLAGS
CMD = "transfer"


def define_flags() -> None:
    flags.DEFINE_string("workdir", None, "Training workdir of an image-to-video model.")
    flags.DEFINE_string("image", None, "Target image (any size; png, jpg, ...).")
    flags.DEFINE_string("video", None, "Source video whose motion is transferred (mp4, gif, "
                                       "...).")
    flags.DEFINE_string("output", "transfer.gif", "Output .gif, .mp4 or .png.")
    flags.DEFINE_integer("label", None, "Class label for conditional models.")
    flags.DEFINE_bool("compare", False, "Write source | target image | result side by side.")
    flags.DEFINE_integer("fps", 8, "Frames per second of GIF/MP4.", lower_bound=1)


def _rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        frame = np.stack([frame] * 3, -1)
    if frame.ndim != 3 or frame.shape[-1] not in (1, 3, 4):
        raise ValueError(f"unexpected pixel layout {frame.shape}")
    if frame.shape[-1] == 1:
        frame = np.repeat(frame, 3, -1)
    frame = frame[..., :3]
    if frame.dtype != np.uint8:            # 16-bit PNGs and the like
        top = np.iinfo(frame.dtype).max if np.issubdtype(frame.dtype, np.integer) else 1.0
        frame = np.clip(np.rint(frame.astype(np.float64) / top * 255), 0, 255).astype(np.uint8)
    return frame


def load_image(path: str, resolution: int, flag: str = "--image") -> np.ndarray:
    """An image file of any size -> float32 [R, R, 3] in [-1, 1]. Raises ValueError naming
    `flag` when the file is missing or not an image."""
    if not os.path.isfile(path):
        raise ValueError(f"{flag}={path!r}: no such file")
    try:
        import imageio.v3 as iio
        # Pillow, not imageio's default plugin search: that would also "read" a video's first
        # frame, and a video given as --image is a mistake to report.
        frame = np.asarray(iio.imread(path, index=0, plugin="pillow"))
        frame = _rgb(frame)
    except Exception as e:  # noqa: BLE001 - any decoder failure: not an image we can read
        raise ValueError(f"{flag}={path!r} is not an image file that can be read "
                         f"({type(e).__name__})") from None
    return viz.from_uint8(center_crop_resize(frame[None], resolution)[0])


def load_video(path: str, resolution: int, num_frames: int, flag: str = "--video") -> np.ndarray:
    """A video file (anything PyAV decodes, or a GIF) -> float32 [num_frames, R, R, 3] in
    [-1, 1]: its first num_frames frames, the last repeated when it is shorter."""
    if not os.path.isfile(path):
        raise ValueError(f"{flag}={path!r}: no such file")
    try:
        if path.lower().endswith(".gif"):
            import imageio.v3 as iio
            frames = [_rgb(np.asarray(f)) for f in iio.imread(path, index=None)][:num_frames]
        else:
            import av
            frames = []
            with av.open(path) as container:
                for frame in container.decode(video=0):
                    frames.append(frame.to_ndarray(format="rgb24"))
                    if len(frames) >= num_frames:
                        break
    except Exception as e:  # noqa: BLE001 - any decoder failure: not a video we can read
        raise ValueError(f"{flag}={path!r} is not a video file that can be read "
                         f"({type(e).__name__})") from None
    if not frames:
        raise ValueError(f"{flag}={path!r} has no frames")
    frames = frames + [frames[-1]] * (num_frames - len(frames))
    return viz.from_uint8(center_crop_resize(np.stack(frames), resolution))


def transfer_files(model, image_path: str, video_path: str, label=None):
    """(source [1, T, R, R, 3], image [1, R, R, 3], result [1, T, R, R, 3]), all in [-1, 1]."""
    import tensorflow as tf
    cfg = model.cfg
    image = load_image(image_path, cfg.resolution)[None]
    video = load_video(video_path, cfg.resolution, cfg.num_frames)[None]
    labels = None
    if cfg.conditional:
        labels = tf.constant([0 if label is None else label], tf.int32)
    result = model.transfer(tf.constant(image), tf.constant(video), labels).numpy()
    return video, image, result


def main(argv):
    del argv
    for name in ("workdir", "image", "video"):
        if not getattr(FLAGS, name):
            raise ValueError(f"--{name} is required")
    errors.check_output_file("--output", FLAGS.output, viz.VIDEO_SUFFIXES)
    for name in ("image", "video"):
        if not os.path.isfile(getattr(FLAGS, name)):
            raise ValueError(f"--{name}={getattr(FLAGS, name)!r}: no such file")
    from tfvidgen import workdir as workdir_lib
    model, config, step = workdir_lib.load_for_inference(FLAGS.workdir)
    if not hasattr(model, "transfer"):
        raise ValueError(f"--workdir={FLAGS.workdir!r} holds a {config.model} model, which does "
                         f"no motion transfer (train an image-to-video model: "
                         f"--model=dual_mtgan)")
    if FLAGS.label is not None and not (model.cfg.conditional
                                        and 0 <= FLAGS.label < model.cfg.num_classes):
        raise ValueError(f"--label={FLAGS.label}: the model is not conditional or has no such "
                         f"class")
    source, image, result = transfer_files(model, FLAGS.image, FLAGS.video, FLAGS.label)
    videos = result
    if FLAGS.compare:
        still = np.repeat(image[:, None], source.shape[1], axis=1)
        videos = np.concatenate([source, still, result])
    viz.write_video_grid(FLAGS.output, viz.to_uint8(videos), FLAGS.fps,
                         columns=len(videos))
    print(f"wrote the transfer (step {step}) to {os.path.abspath(FLAGS.output)}")
    return 0


if __name__ == "__main__":
    define_flags()
    errors.run_app(main, CMD)
