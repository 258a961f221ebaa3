"""The reference FVD protocol (Unterthiner et al. 2018), from an I3D network the user keeps on disk.

Reference preprocessing and features, exactly: uint8 frames -> float32, every frame resized
bilinearly (half-pixel centres, no antialiasing: TF1's resize_bilinear with align_corners=False)
to the network's input size (224 for I3D Kinetics-400), then scaled to [-1, 1] with
2 * x / 255 - 1; the features are the network's outputs (I3D's 400 logits), [N, D]; the distance
is the Frechet distance of Gaussians fitted to the two feature sets, in float64
(tfvidgen.eval.metrics.frechet_distance_from_features, the one implementation and its rule).

Named protocols pin everything that changes the number (PROTOCOLS); each result records them
with the network's sha256. FVDs computed under another protocol, another resizing or another
copy of I3D (e.g. a PyTorch port) are not comparable with these.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time

import numpy as np

__all__ = ["FVDProtocol", "PROTOCOLS", "protocol_named", "FeatureNetwork", "load_network",
           "preprocess", "real_clip_config", "available_clips", "real_features",
           "fake_features"]


@dataclasses.dataclass(frozen=True)
class FVDProtocol:
    name: str
    num_fake: int                 # generated clips
    num_real: int                 # real clips
    num_frames: int = 16          # consecutive frames per clip
    stride: int = 1               # temporal stride of the real clips
    real_clips: str = ("the first num_real clips of the dataset's test split (train split when "
                       "it has none) in the pipeline's fixed order, seed 0, each num_frames "
                       "consecutive frames at the stride, no crop or flip")
    fake_clips: str = ("generated with sampling seeds 0 .. num_fake-1 (labels cycling through "
                       "the classes for conditional models), the first num_frames frames")


PROTOCOLS = {
    "fvd2048_16f": FVDProtocol("fvd2048_16f", 2048, 2048),
    "fvd256_16f": FVDProtocol("fvd256_16f", 256, 256),
}


def protocol_named(name: str, num_videos: int | None = None) -> FVDProtocol:
    """A named protocol, or with num_videos a custom count (named `<name>_n<count>`)."""
    if name not in PROTOCOLS:
        raise ValueError(f"--fvd_protocol={name}: unknown; known: {', '.join(PROTOCOLS)}")
    p = PROTOCOLS[name]
    if num_videos is None or num_videos == p.num_fake:
        return p
    if num_videos < 2:
        raise ValueError(f"--fvd_num_videos={num_videos}: need at least 2 clips per set")
    return dataclasses.replace(p, name=f"{name}_n{num_videos}", num_fake=num_videos,
                               num_real=num_videos)


@dataclasses.dataclass
class FeatureNetwork:
    """A loaded video network: fn(videos float32 [N, T, S, S, 3] in [-1, 1]) -> [N, D]."""
    path: str
    signature_name: str
    input_name: str
    size: int                      # spatial input size (from the signature; 224 if unknown)
    sha256: str
    fn: object

    def features(self, videos_uint8: np.ndarray, batch_size: int = 16, log=None) -> np.ndarray:
        """uint8 [N, T, H, W, 3] -> float64 [N, D], in batches, with progress lines."""
        import tensorflow as tf
        out, start, n = [], time.time(), len(videos_uint8)
        for i in range(0, n, batch_size):
            batch = preprocess(videos_uint8[i:i + batch_size], self.size)
            result = self.fn(**{self.input_name: batch})
            value = next(iter(result.values())) if isinstance(result, dict) else result
            value = np.asarray(tf.convert_to_tensor(value).numpy(), np.float64)
            if value.ndim != 2 or len(value) != len(batch):
                raise ValueError(f"the network in {self.path} answered shape {value.shape} for "
                                 f"{len(batch)} clips; FVD needs features [N, D]")
            out.append(value)
            done = min(i + batch_size, n)
            if log is not None and ((i // batch_size) % 8 == 7 or done == n):
                log(f"[fvd] features {done}/{n} ({done / (time.time() - start):.1f} clips/s)")
        return np.concatenate(out)


def _sha256_of_tree(path: str) -> str:
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            digest.update(os.path.relpath(full, path).encode())
            with open(full, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def load_network(path: str) -> FeatureNetwork:
    """The video network in `path`: a TF2 SavedModel or a TF1 hub-format module directory,
    signature `default` or `serving_default`, whose one rank-5 input takes the videos.

    Raises:
      FileNotFoundError: `path` holds no SavedModel / hub module.
      ValueError: it loads but has no usable signature or video input.
    """
    import tensorflow as tf
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise FileNotFoundError(f"--fvd_model={path}: no saved_model.pb there (expected a "
                                f"TensorFlow SavedModel or TF1 hub module directory)")
    loaded = None
    errors = []
    for tags in (None, [], ["serve"]):        # TF2 default; hub modules use the empty tag set
        try:
            loaded = tf.saved_model.load(path, tags=tags)
            if loaded.signatures:
                break
        except Exception as e:                 # noqa: BLE001 -- reported below if none loads
            errors.append(f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
    if loaded is None:
        raise FileNotFoundError(f"--fvd_model={path}: not loadable as a SavedModel ("
                                f"{'; '.join(errors)})")
    names = [n for n in ("default", "serving_default") if n in loaded.signatures]
    if not names:
        raise ValueError(f"--fvd_model={path}: no `default` or `serving_default` signature "
                         f"(it has: {', '.join(loaded.signatures) or 'none'})")
    signature = loaded.signatures[names[0]]
    inputs = signature.structured_input_signature[1]
    videos = {k: s for k, s in inputs.items() if s.shape.rank == 5}
    if len(videos) != 1:
        raise ValueError(f"--fvd_model={path}: signature {names[0]} needs exactly one video "
                         f"input [N, T, H, W, 3]; its inputs are "
                         + ", ".join(f"{k} {s.shape}" for k, s in inputs.items()))
    (input_name, spec), = videos.items()
    size = spec.shape[2] or 224
    # Keep the loaded object alive: the signature's variables belong to it.
    fn = _Bound(signature, loaded)
    return FeatureNetwork(path, names[0], input_name, int(size), _sha256_of_tree(path), fn)


class _Bound:
    def __init__(self, signature, owner):
        self.signature, self.owner = signature, owner

    def __call__(self, **kwargs):
        return self.signature(**kwargs)


def preprocess(videos_uint8, size: int):
    """uint8 [N, T, H, W, 3] -> float32 [N, T, size, size, 3] in [-1, 1], as the reference."""
    import tensorflow as tf
    videos = tf.cast(tf.convert_to_tensor(videos_uint8), tf.float32)
    n, t, h, w, c = (tf.shape(videos)[i] for i in range(5))
    frames = tf.reshape(videos, [n * t, h, w, c])
    resized = tf.image.resize(frames, [size, size], method="bilinear", antialias=False)
    return tf.reshape(2.0 * resized / 255.0 - 1.0, [n, t, size, size, c])



def real_clip_config(data, p: FVDProtocol):
    """The DataConfig of the protocol's real clips: consecutive frames at the stride."""
    return dataclasses.replace(data, num_frames=p.num_frames, max_stride=p.stride,
                               random_crop=0.0, random_flip=False)


def available_clips(data, split: str) -> int:
    """Distinct videos the split holds (one clip is drawn per video)."""
    if data.dataset != "records":
        return data.num_videos
    from tfvidgen.data import records
    return sum(records.read_manifest(data.data_dir)["counts"].get(split, {}).values())


def _real_clips(data, p: FVDProtocol, log) -> np.ndarray:
    from tfvidgen import viz
    from tfvidgen.data import pipeline
    from tfvidgen.eval import classifier
    split = classifier.real_split(data)
    available = available_clips(data, split)
    if available < p.num_real:
        raise ValueError(f"{p.name} needs {p.num_real} real clips; the {split} split of "
                         f"{data.dataset} has {available} videos (use --fvd_num_videos="
                         f"{available} for a custom count)")
    log(f"[fvd] {p.num_real} real clips of {p.num_frames} frames from the {split} split")
    dataset = pipeline.make_dataset(real_clip_config(data, p), 32, 0, split=split)
    clips, seen = [], 0
    for batch in dataset:
        clips.append(viz.to_uint8(batch["video"].numpy()))
        seen += len(clips[-1])
        if seen >= p.num_real:
            break
    return np.concatenate(clips)[:p.num_real]


def real_features(network: FeatureNetwork, data, p: FVDProtocol, cache_dir: str,
                  log=print) -> np.ndarray:
    """Features of the protocol's real clips, cached per protocol, data and network; a cache
    written under another protocol is refused, never silently reused."""
    record = {"protocol": dataclasses.asdict(p), "network_sha256": network.sha256,
              "data": dataclasses.asdict(real_clip_config(data, p))}
    key = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"fvd_real_{p.name}_{network.sha256[:12]}.npz")
    if os.path.isfile(path):
        cached = np.load(path)
        stored = json.loads(str(cached["record"]))
        if stored != record:
            changed = sorted(k for k in record if stored.get(k) != record[k])
            raise ValueError(f"{path} holds real FVD features of another protocol ({', '.join(changed)} "
                             f"differ); delete it to recompute")
        log(f"[fvd] real features cached ({key})")
        return cached["features"]
    clips = _real_clips(data, p, log)
    features = network.features(clips, log=log)
    os.makedirs(cache_dir, exist_ok=True)
    from tfvidgen import errors
    with errors.atomic_output(path, ".partial.npz") as tmp:
        np.savez(tmp, features=features, record=json.dumps(record, sort_keys=True))
    return features


def fake_features(network: FeatureNetwork, model, p: FVDProtocol, batch_size: int = 16,
                  log=print) -> np.ndarray:
    """Features of num_fake generated clips (protocol's seeds, first num_frames frames)."""
    import tensorflow as tf

    from tfvidgen import viz
    from tfvidgen.data import synthetic
    if model.cfg.num_frames < p.num_frames:
        raise ValueError(f"{p.name} needs clips of {p.num_frames} frames; the model generates "
                         f"{model.cfg.num_frames}")
    out = []
    for start in range(0, p.num_fake, batch_size):
        n = min(batch_size, p.num_fake - start)
        labels = (tf.range(start, start + n) % model.cfg.num_classes
                  if model.cfg.conditional else None)
        # image-to-video models animate the synthetic first frames of the same seeds
        images = (synthetic.first_frames(range(start, start + n), model.cfg.resolution)
                  if model.CAPABILITIES.image_input else None)
        videos = model.generate(model.sample_inputs(n, start, labels, images=images),
                                training=False)
        out.append(viz.to_uint8(videos.numpy()[:, :p.num_frames]))
    clips = np.concatenate(out)
    return network.features(clips, batch_size, log=log)
