"""Reading images and videos from files, as the models see them: centre-cropped to a square and
resized to the model's resolution (as tools/prepare_dataset.py prepares training data), float32
in [-1, 1]. Used by sample --image, transfer and the serving client.
"""

from __future__ import annotations

import os

import numpy as np

from tfvidgen import viz
from tfvidgen.data.frames import center_crop_resize

__all__ = ["load_image", "load_video"]


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
