"""Turning batches of videos into things people look at: grids, GIF/MP4 files, PNG frame strips.

Host-side NumPy only (never called inside a tf.function). Videos are uint8 [N, T, H, W, 3] here;
`to_uint8` converts model output in [-1, 1]. Files are written atomically (`<path>.partial`,
renamed when complete; removed on failure: tfvidgen.errors.atomic_output).
"""

from __future__ import annotations

import io
import math
import os

import numpy as np

from tfvidgen import errors

__all__ = ["to_uint8", "from_uint8", "tile_videos", "frame_strip_grid", "encode_gif", "write_gif", "write_mp4",
           "write_video_grid", "VIDEO_SUFFIXES"]

VIDEO_SUFFIXES = (".gif", ".mp4", ".png")


def to_uint8(videos) -> np.ndarray:
    """[-1, 1] floats -> uint8 with (x + 1) * 127.5, rounded and clipped."""
    return np.clip(np.rint((np.asarray(videos, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def from_uint8(frames) -> np.ndarray:
    """uint8 -> float32 in [-1, 1] (x / 127.5 - 1), the inverse of to_uint8 on the uint8 grid."""
    return np.asarray(frames, np.float32) / 127.5 - 1.0


def tile_videos(videos: np.ndarray, columns: int | None = None, pad: int = 1) -> np.ndarray:
    """[N, T, H, W, C] -> [T, rows*(H+pad)-pad, cols*(W+pad)-pad, C]: a grid animated over time."""
    n, t, h, w, c = videos.shape
    columns = columns or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / columns))
    out = np.zeros((t, rows * (h + pad) - pad, columns * (w + pad) - pad, c), videos.dtype)
    for i in range(n):
        r, col = divmod(i, columns)
        out[:, r * (h + pad):r * (h + pad) + h, col * (w + pad):col * (w + pad) + w] = videos[i]
    return out


def frame_strip_grid(videos: np.ndarray, pad: int = 1) -> np.ndarray:
    """[N, T, H, W, C] -> one image [N*(H+pad)-pad, T*(W+pad)-pad, C]: a row of frames per video."""
    n, t, h, w, c = videos.shape
    out = np.zeros((n * (h + pad) - pad, t * (w + pad) - pad, c), videos.dtype)
    for i in range(n):
        for j in range(t):
            out[i * (h + pad):i * (h + pad) + h, j * (w + pad):j * (w + pad) + w] = videos[i, j]
    return out


def encode_gif(frames: np.ndarray, fps: int = 8) -> bytes:
    """uint8 [T, H, W, 3] -> GIF bytes that loop forever."""
    import imageio.v3 as iio
    buffer = io.BytesIO()
    iio.imwrite(buffer, frames, extension=".gif", duration=int(1000 / fps), loop=0)
    return buffer.getvalue()


def write_gif(path: str, frames: np.ndarray, fps: int = 8) -> None:
    _atomic_write(path, encode_gif(frames, fps))


def write_mp4(path: str, frames: np.ndarray, fps: int = 8) -> None:
    """H.264 MP4 (yuv420p needs even sides: frames are padded by one pixel when odd)."""
    import av
    t, h, w, _ = frames.shape
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
    with errors.atomic_output(path) as tmp, av.open(tmp, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_video_grid(path: str, videos: np.ndarray, fps: int = 8, columns: int | None = None) -> None:
    """Writes uint8 videos [N, T, H, W, 3] as an animated grid (.gif/.mp4) or a frame grid (.png).

    Raises:
      ValueError: `path` does not end in one of VIDEO_SUFFIXES or is a directory.
      OSError: the file system refused the write (nothing is left behind).
    """
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"output {path!r}: expected one of {', '.join(VIDEO_SUFFIXES)}")
    if os.path.isdir(path):
        raise ValueError(f"output {path!r} is a directory; give a file name")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if suffix == ".png":
        import imageio.v3 as iio
        buffer = io.BytesIO()
        iio.imwrite(buffer, frame_strip_grid(videos), extension=".png")
        _atomic_write(path, buffer.getvalue())
    elif suffix == ".gif":
        write_gif(path, tile_videos(videos, columns), fps)
    else:
        write_mp4(path, tile_videos(videos, columns), fps)


def _atomic_write(path: str, data: bytes) -> None:
    with errors.atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
