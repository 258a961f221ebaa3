"""The evaluation classifier: a compact (2+1)D CNN trained on a dataset's real training videos.

No pretrained video network fits every dataset and none can be downloaded here, so (like
TwoStreamVAN's and MVT's protocols) each dataset gets its own classifier. It predicts the action
label and, where the dataset has identities (synthetic actors, Weizmann actors), the identity; its
pooled features feed the Frechet distance. Trained once per dataset/protocol and cached:
<dir>/classifier.weights.h5 + <dir>/classifier.json (protocol, real test accuracy, weights hash).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tfvidgen import errors
from tfvidgen.config import DataConfig
from tfvidgen.data import pipeline

__all__ = ["VideoClassifier", "ClassifierProtocol", "train_classifier", "load_or_train",
           "real_split", "protocol_for", "protocol_key", "shared_dir",
           "predict", "test_split", "train_on_arrays", "real_test_accuracy", "make_train_step"]

WEIGHTS, META = "classifier.weights.h5", "classifier.json"
_TEST_SEED_OFFSET = 1_000_003       # synthetic test videos come from another seed: disjoint


@dataclasses.dataclass(frozen=True)
class ClassifierProtocol:
    """Everything that defines a classifier; a cached one is reused only if this matches."""

    dataset: str
    data_dir: str
    resolution: int
    num_frames: int
    max_stride: int
    num_classes: int
    num_identities: int
    seed: int = 0
    steps: int = 400
    batch_size: int = 32
    width: int = 32
    # Bumped when the classifier or the evaluation data changes, so old caches retrain:
    # 2 = mean+max pooled features, 3 = data order independent of TF's global seed, 4 = records
    # are tested on their test split (was: the train split).
    version: int = 4


def protocol_for(data: DataConfig, info: dict, steps: int = 400) -> ClassifierProtocol:
    """The classifier protocol of a run's data (`info`: pipeline.dataset_info), as
    `python -m tfvidgen.evaluate --classifier_steps=<steps>` builds it."""
    return ClassifierProtocol(data.dataset, data.data_dir, data.resolution, data.num_frames,
                              data.max_stride, info["num_classes"], info["num_identities"],
                              steps=steps)


def protocol_key(p: ClassifierProtocol) -> str:
    """16 hex digits naming `p`: runs with the same key can share one classifier."""
    return hashlib.sha256(json.dumps(dataclasses.asdict(p), sort_keys=True)
                          .encode()).hexdigest()[:16]


def shared_dir(cache_dir: str, p: ClassifierProtocol) -> str:
    """The classifier directory of `p` inside a cache shared by runs of several datasets."""
    return os.path.join(cache_dir, f"classifier-{protocol_key(p)}")


@keras.saving.register_keras_serializable(package="tfvidgen")
class VideoClassifier(keras.Model):
    """videos [B, T, H, W, 3] in [-1, 1] -> {"action": logits, "identity": logits, "features"}."""

    def __init__(self, num_classes: int, num_identities: int = 0, width: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.num_identities, self.width = num_classes, num_identities, width
        self.blocks = []
        for i, channels in enumerate((width, 2 * width, 4 * width)):
            self.blocks.append([
                keras.layers.Conv3D(channels, (1, 3, 3), padding="same", use_bias=False,
                                    name=f"spatial{i}"),
                keras.layers.GroupNormalization(groups=min(8, channels), name=f"gn_s{i}"),
                keras.layers.Conv3D(channels, (3, 1, 1), padding="same", use_bias=False,
                                    name=f"temporal{i}"),
                keras.layers.GroupNormalization(groups=min(8, channels), name=f"gn_t{i}"),
                keras.layers.MaxPooling3D((1 if i == 0 else 2, 2, 2), padding="same")])
        self.action_head = keras.layers.Dense(num_classes, name="action")
        self.identity_head = (keras.layers.Dense(num_identities, name="identity")
                              if num_identities else None)

    def call(self, videos, training=None):
        return self.heads(self.trunk(videos))

    def trunk(self, videos):
        """videos -> the last feature map [B, T', H', W', 4 * width] (Grad-CAM's layer)."""
        # Frame differences as extra channels: explicit motion cues for a small, briefly trained net.
        differences = videos[:, 1:] - videos[:, :-1]
        h = tf.concat([videos, tf.concat([differences[:, :1], differences], axis=1)], axis=-1)
        # GroupNorm, not BN: no running statistics, so a briefly trained classifier behaves the
        # same in evaluation as in training (BN's moving averages lagged far behind here).
        for spatial, norm_s, temporal, norm_t, pool in self.blocks:
            h = keras.ops.relu(norm_s(spatial(h)))
            h = keras.ops.relu(norm_t(temporal(h)))
            h = pool(h)
        return h

    def heads(self, h):
        """The last feature map -> {"features", "action" logits(, "identity" logits)}."""
        # Mean and max pooling: the max keeps small, local motion (one waving forearm at 16x16)
        # that the mean dilutes; it lifted 300-step action accuracy from 55% to 82-91%.
        features = tf.concat([tf.reduce_mean(h, axis=[1, 2, 3]),
                              tf.reduce_max(h, axis=[1, 2, 3])], axis=-1)  # [B, 8 * width]
        out = {"features": features, "action": self.action_head(features)}
        if self.identity_head is not None:
            out["identity"] = self.identity_head(features)
        return out

    @tf.function(reduce_retracing=True)
    def infer(self, videos):
        return self(videos, training=False)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "num_identities": self.num_identities, "width": self.width}


def _data_config(p: ClassifierProtocol, test: bool) -> DataConfig:
    return DataConfig(dataset=p.dataset, data_dir=p.data_dir, resolution=p.resolution,
                      num_frames=p.num_frames, max_stride=p.max_stride,
                      num_videos=2048 if not test else 512)


def real_split(p) -> str:
    """Where the "real test" videos of `p` (a ClassifierProtocol or DataConfig: its dataset and
    data_dir) come from: "test" for synthetic data (a disjoint seed) and for records prepared
    with --test_fraction > 0, else "train" (then bounds are optimistic)."""
    if p.dataset != "records":
        return "test"
    from tfvidgen.data import records
    manifest = records.read_manifest(p.data_dir)
    return "test" if manifest.get("splits", {}).get("test") else "train"


def test_split(p: ClassifierProtocol, batch_size: int) -> tf.data.Dataset:
    """Real test videos: a disjoint synthetic seed, or the records' test split when it has one
    (real_split)."""
    cfg = _data_config(p, test=True)
    return pipeline.make_dataset(cfg, batch_size, p.seed + _TEST_SEED_OFFSET,
                                 split=real_split(p))


def _loss(model, batch, training):
    out = model(batch["video"], training=training)
    loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
        batch["label"], out["action"], from_logits=True))
    if "identity" in out:
        identity = tf.maximum(batch["identity"], 0)
        known = tf.cast(batch["identity"] >= 0, tf.float32)
        per_example = keras.losses.sparse_categorical_crossentropy(identity, out["identity"],
                                                                   from_logits=True)
        loss += tf.reduce_sum(per_example * known) / tf.maximum(tf.reduce_sum(known), 1.0)
    return loss


def predict(model, videos, batch_size: int = 64) -> dict:
    """Softmax probabilities and features for videos [N, T, H, W, 3] (NumPy, in [-1, 1])."""
    outs: dict[str, list] = {}
    for start in range(0, len(videos), batch_size):
        out = model.infer(tf.constant(videos[start:start + batch_size], tf.float32))
        for key, value in out.items():
            value = tf.nn.softmax(value) if key != "features" else value
            outs.setdefault(key, []).append(value.numpy())
    return {k: np.concatenate(v) for k, v in outs.items()}


def _accuracy(model, p: ClassifierProtocol, batches: int) -> dict:
    correct = {"action": 0, "identity": 0}
    total = 0
    for batch in test_split(p, p.batch_size).take(batches):
        out = predict(model, batch["video"].numpy())
        correct["action"] += int((out["action"].argmax(1) == batch["label"].numpy()).sum())
        if "identity" in out:
            correct["identity"] += int((out["identity"].argmax(1)
                                        == batch["identity"].numpy()).sum())
        total += len(batch["label"])
    result = {"test_accuracy": correct["action"] / total, "test_videos": total}
    if p.num_identities:
        result["identity_test_accuracy"] = correct["identity"] / total
    return result


def make_train_step(model):
    """A traced step: Adam(2e-3) on the action (+ identity) cross-entropy of one batch."""
    optimizer = keras.optimizers.Adam(2e-3)

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            loss = _loss(model, batch, training=True)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step


def _fit(model, batches, steps: int, log, tag: str = "classifier") -> None:
    step = make_train_step(model)
    start = time.time()
    for i in range(1, steps + 1):
        loss = float(step(next(batches)))
        if i % 50 == 0 or i == steps:
            log(f"[{tag}] step {i}/{steps} loss {loss:.3f} ({time.time() - start:.0f}s)")


def train_classifier(p: ClassifierProtocol, out_dir: str, log=print) -> tuple:
    """Trains, measures real test accuracy, writes weights + metadata. Returns (model, meta)."""
    keras.utils.set_random_seed(p.seed)
    model = VideoClassifier(p.num_classes, p.num_identities, p.width)
    _fit(model, iter(pipeline.make_dataset(_data_config(p, test=False), p.batch_size, p.seed)),
         p.steps, log)
    meta = {"protocol": dataclasses.asdict(p), **_accuracy(model, p, batches=8)}
    os.makedirs(out_dir, exist_ok=True)
    weights = os.path.join(out_dir, WEIGHTS)
    with errors.atomic_output(weights, ".partial.weights.h5") as tmp:
        model.save_weights(tmp)
    with open(weights, "rb") as f:
        meta["weights_sha256"] = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(out_dir, META), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    log(f"[classifier] real test accuracy {meta['test_accuracy']:.3f} -> {out_dir}")
    return model, meta


def train_on_arrays(videos: np.ndarray, labels: np.ndarray, p: ClassifierProtocol,
                    log=print) -> VideoClassifier:
    """A fresh action classifier trained on given videos (S3's "SeR": trained on generated)."""
    keras.utils.set_random_seed(p.seed + 1)
    model = VideoClassifier(p.num_classes, 0, p.width)
    data = (tf.data.Dataset.from_tensor_slices({"video": videos.astype(np.float32),
                                                "label": labels.astype(np.int32)})
            .shuffle(len(videos), seed=p.seed).repeat().batch(p.batch_size))
    _fit(model, iter(data), p.steps, log, tag="classifier on generated")
    return model


def real_test_accuracy(model, p: ClassifierProtocol, batches: int = 8) -> float:
    """Action accuracy on the real test split."""
    return _accuracy(model, p, batches)["test_accuracy"]


def load(out_dir: str) -> tuple:
    """(classifier, metadata) cached in `out_dir`. Raises FileNotFoundError when none is."""
    meta_path = os.path.join(out_dir, META)
    if not os.path.isfile(meta_path):
        raise FileNotFoundError(f"no evaluation classifier in {out_dir}")
    with open(meta_path) as f:
        meta = json.load(f)
    p = ClassifierProtocol(**meta["protocol"])
    model = VideoClassifier(p.num_classes, p.num_identities, p.width)
    model(tf.zeros([1, p.num_frames, p.resolution, p.resolution, 3]))
    model.load_weights(os.path.join(out_dir, WEIGHTS))
    return model, meta


@contextlib.contextmanager
def _exclusive(out_dir: str):
    """Holds a lock on `out_dir` so that processes sharing a cache train its classifier once
    (the others wait, then load it). Without a writable directory: no lock (loading only)."""
    try:
        os.makedirs(out_dir, exist_ok=True)
        lock = open(os.path.join(out_dir, ".lock"), "w")
    except OSError:
        lock = None
    if lock is None:
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def load_or_train(p: ClassifierProtocol, out_dir: str, log=print) -> tuple:
    """The cached classifier if its protocol matches, else a newly trained one (once, when
    several processes share `out_dir`)."""
    with _exclusive(out_dir):
        return _load_or_train(p, out_dir, log)


def _load_or_train(p: ClassifierProtocol, out_dir: str, log) -> tuple:
    meta_path = os.path.join(out_dir, META)
    if os.path.isfile(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get("protocol") == dataclasses.asdict(p):
            model, meta = load(out_dir)
            log(f"[classifier] cached ({meta['test_accuracy']:.3f} real test accuracy)")
            return model, meta
        log("[classifier] cached classifier has another protocol: retraining")
    return train_classifier(p, out_dir, log)
