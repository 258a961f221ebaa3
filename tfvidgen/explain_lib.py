"""The views of `python -m tfvidgen.explain`: why a discriminator or the evaluation classifier
decides as it does, and what a model's internal controls do.

Every view maps a batch of videos to heat maps [N, T, H, W] in [0, 1], one panel per map kind:
  saliency_d          SmoothGrad (tf-keras-vis) of each discriminator's realness logit w.r.t. the
                      input video (model.discriminator_scores): which pixels make D call it real
  gradcam_classifier  Grad-CAM or Score-CAM (tf-keras-vis) of the evaluation classifier's
                      predicted action and identity on its last feature map: does the classifier
                      behind IS/FD/S3 look at the actor or at the background?
  <model views>       declared by the model (model.explain_views(), e.g. G3AN's F-SA attention)

tf-keras-vis needs functional Keras models: the subclassed networks are wrapped, not copied, by
`as_functional` (a layer calling the network's own function).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

__all__ = ["COMMON_VIEWS", "available_views", "as_functional", "discriminator_saliency",
           "classifier_cam", "overlay", "side_by_side", "stacked"]

COMMON_VIEWS = {
    "saliency_d": "SmoothGrad saliency of each discriminator's realness score",
    "gradcam_classifier": "Grad-CAM/Score-CAM of the evaluation classifier's predicted action "
                          "and identity",
}


def available_views(model) -> dict:
    """{view: help} of `model`: the common views and the ones it declares."""
    return {**COMMON_VIEWS, **{name: help_ for name, (help_, _) in model.explain_views().items()}}


def as_functional(fn, input_shape, name: str, inner: str | None = None, head=None):
    """A functional keras.Model around `fn` (tf-keras-vis cannot use subclassed models).

    With `inner` and `head`: input -> fn (layer `inner`, e.g. a feature map) -> head, so CAM
    methods can find the inner layer's output."""
    import keras

    class _Call(keras.layers.Layer):
        def __init__(self, call, **kwargs):
            super().__init__(**kwargs)
            self._fn = call

        def call(self, x):
            return self._fn(x)

    inputs = keras.Input(tuple(input_shape))
    if inner is None:
        return keras.Model(inputs, _Call(fn, name=name)(inputs), name=name)
    hidden = _Call(fn, name=inner)(inputs)
    return keras.Model(inputs, _Call(head, name=name)(hidden), name=name)


@contextlib.contextmanager
def _quiet_keras_vis():
    # tf-keras-vis calls the model with a list of one input: Keras warns on every call.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The structure of `inputs`")
        yield


def discriminator_saliency(model, videos, labels=None, smooth_samples: int = 20,
                           smooth_noise: float = 0.2) -> dict:
    """{discriminator: SmoothGrad maps [N, T, H, W] in [0, 1]} of videos [N, T, H, W, 3] in
    [-1, 1] (labels [N] for conditional models)."""
    import tensorflow as tf
    from tf_keras_vis.saliency import Saliency

    videos = np.asarray(videos, np.float32)
    labels = None if labels is None else tf.constant(labels, tf.int32)
    names = list(model.discriminator_scores(tf.constant(videos[:1]),
                                            None if labels is None else labels[:1]))
    maps = {}
    for name in names:
        def score(v, name=name):
            batch_labels = None if labels is None else labels[:tf.shape(v)[0]]
            return model.discriminator_scores(v, batch_labels)[name][:, None]

        saliency = Saliency(as_functional(score, videos.shape[1:], name), clone=False)
        with _quiet_keras_vis():
            result = saliency(lambda out: out[:, 0], videos, smooth_samples=smooth_samples,
                              smooth_noise=smooth_noise)
        maps[name] = np.asarray(result, np.float32)
    return maps


def classifier_cam(classifier, videos, method: str = "gradcam") -> tuple[dict, dict]:
    """({head: maps [N, T, H, W] in [0, 1]}, {head: predicted class [N]}) of the evaluation
    classifier's predicted action (and identity) on videos [N, T, H, W, 3] in [-1, 1]."""
    import tensorflow as tf
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.scorecam import Scorecam

    videos = np.asarray(videos, np.float32)
    outputs = classifier(tf.constant(videos), training=False)
    maps, predicted = {}, {}
    for head in ("action", "identity"):
        if head not in outputs:
            continue
        predicted[head] = np.argmax(outputs[head].numpy(), axis=-1)
        network = as_functional(classifier.trunk, videos.shape[1:], head, inner="trunk",
                                head=lambda h, head=head: classifier.heads(h)[head])
        target = tf.constant(predicted[head])

        def score(logits, target=target):
            return tf.gather(logits, target[:tf.shape(logits)[0]], batch_dims=1)

        cam = (Gradcam if method == "gradcam" else Scorecam)(network, clone=False)
        kwargs = {"max_N": 16} if method == "scorecam" else {}
        with _quiet_keras_vis():
            result = cam(score, videos, penultimate_layer="trunk",
                         seek_penultimate_conv_layer=False, **kwargs)
        maps[head] = np.nan_to_num(np.asarray(result, np.float32))
    return maps, predicted


def _heat_colours(maps: np.ndarray) -> np.ndarray:
    """[...] in [0, 1] -> RGB [..., 3] in [0, 1]: black-blue-red-yellow-white ("hot"-like, so
    low values stay dark and the overlay shows the frame)."""
    x = np.clip(maps, 0.0, 1.0)[..., None]
    stops = np.array([[0, 0, 0], [0, 0, 0.8], [0.9, 0, 0], [1, 0.9, 0], [1, 1, 1]], np.float32)
    position = x * (len(stops) - 1)
    low = np.clip(np.floor(position).astype(int), 0, len(stops) - 2)
    fraction = position - low
    return stops[low[..., 0]] * (1 - fraction) + stops[low[..., 0] + 1] * fraction


def overlay(videos_uint8: np.ndarray, maps: np.ndarray, alpha: float = 0.75) -> np.ndarray:
    """uint8 frames [N, T, H, W, 3] blended with heat maps [N, T, H, W] -> uint8."""
    weight = alpha * np.clip(maps, 0.0, 1.0)[..., None]
    blended = (1 - weight) * videos_uint8 + weight * 255.0 * _heat_colours(maps)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def stacked(videos_uint8: np.ndarray, panels: dict) -> np.ndarray:
    """[N * (1 + P), T, H, W, 3]: each video, then its overlay per panel (a PNG's rows)."""
    rows = [np.stack([videos_uint8] + [overlay(videos_uint8, maps) for maps in panels.values()],
                     axis=1)]
    return np.concatenate(rows, axis=0).reshape(-1, *videos_uint8.shape[1:])


def side_by_side(videos_uint8: np.ndarray, panels: dict, pad: int = 1) -> np.ndarray:
    """[N, T, H, (1 + P) * (W + pad) - pad, 3]: each video's frames, then one overlay per panel."""
    columns = [videos_uint8] + [overlay(videos_uint8, maps) for maps in panels.values()]
    n, t, h, _, c = videos_uint8.shape
    gap = np.zeros((n, t, h, pad, c), np.uint8)
    parts = [columns[0]]
    for column in columns[1:]:
        parts += [gap, column]
    return np.concatenate(parts, axis=3)
