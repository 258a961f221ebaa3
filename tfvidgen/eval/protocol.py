"""The pinned evaluation protocol: sample a model, classify, compute metrics with bounds.

Every result carries its protocol (videos per set, repeats, clip length/stride/resolution, real
split, classifier weights hash, seeds), and the real-data statistics are computed once per protocol
and cached, so two runs of one checkpoint give the same numbers and runs are comparable.

Metrics (natural log):
  is, h_y, h_y_given_v   classifier-based, TwoStreamVAN appendix
  fd                     Frechet distance of classifier features, generated vs real test videos
  label_accuracy         conditional models: share of videos classified as the requested action
  appearance_preservation  fixed appearance latent(s), varied motion: share of videos whose predicted identity stays
                         that of the group's first video
  s3                     MVT's S3 = sqrt((SeR/ReR)(ReS/ReR)), conditional models only: SeR = real
                         test accuracy of a fresh classifier trained on generated videos with
                         their requested labels, ReS = real classifier on those videos, ReR =
                         real classifier on real test videos (one sample set; bound 1 = real)
  fd_external            Frechet distance of features from a user-provided SavedModel (e.g. an
                         I3D the user exported: FVD-style), when --feature_model is given
Image-to-video models (a `transfer(image, video)` method, e.g. Dual-MTGAN) on synthetic_actions
also get image_to_video_results: motion-transfer PSNR/SSIM against the renderer's exact ground
truth beside the copy-source / repeat-target references, and the paper's best-of-K per-time-step
PSNR/SSIM of stochastic generation from a test video's first frame (tfvidgen.eval.transfer).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os

import numpy as np
import tensorflow as tf

from tfvidgen import errors, viz
from tfvidgen.eval import classifier as classifier_lib
from tfvidgen.eval import metrics

__all__ = ["EvalProtocol", "real_statistics", "evaluate_model", "METRICS", "markdown_table",
           "image_to_video_results"]

METRICS = ("is", "h_y", "h_y_given_v", "fd", "label_accuracy", "appearance_preservation", "s3",
           "fd_external")
_BETTER = {"is": "higher", "h_y": "higher", "h_y_given_v": "lower", "fd": "lower",
           "label_accuracy": "higher", "appearance_preservation": "higher", "s3": "higher", "fd_external": "lower"}


@dataclasses.dataclass(frozen=True)
class EvalProtocol:
    num_samples: int
    repeats: int
    seed: int
    classifier: classifier_lib.ClassifierProtocol
    classifier_sha256: str
    feature_model_sha256: str = ""      # of saved_model.pb + variables, when --feature_model

    def key(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True)
                              .encode()).hexdigest()[:16]


def _real_videos(p: EvalProtocol, count: int, offset: int) -> dict:
    """`count` real test videos, the set starting at `offset` (disjoint for different offsets)."""
    batches, videos, labels, identities = count, [], [], []
    data = classifier_lib.test_split(p.classifier, 32).skip(offset // 32)
    for batch in data:
        videos.append(batch["video"].numpy())
        labels.append(batch["label"].numpy())
        identities.append(batch["identity"].numpy())
        if sum(len(v) for v in videos) >= batches:
            break
    return {"video": np.concatenate(videos)[:count], "label": np.concatenate(labels)[:count],
            "identity": np.concatenate(identities)[:count]}


def load_feature_model(path: str):
    """(features_fn, sha256) of a user SavedModel: its serving_default signature's first input
    takes videos [N, T, H, W, 3] float32 in [-1, 1]; its first output is flattened to [N, D]."""
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise FileNotFoundError(f"--feature_model={path!r} is not a SavedModel directory")
    digest = hashlib.sha256()
    for root, _, files in sorted(os.walk(path)):
        for name in sorted(files):
            with open(os.path.join(root, name), "rb") as f:
                digest.update(f.read())
    signature = tf.saved_model.load(path).signatures["serving_default"]
    input_name = sorted(signature.structured_input_signature[1])[0]
    output_name = sorted(signature.structured_outputs)[0]

    def features(videos):
        out = signature(**{input_name: tf.constant(videos, tf.float32)})[output_name].numpy()
        return out.reshape(len(videos), -1)

    return features, digest.hexdigest()


def _batched(fn, videos, batch_size: int = 32) -> np.ndarray:
    return np.concatenate([fn(videos[i:i + batch_size]) for i in range(0, len(videos), batch_size)])


def real_statistics(p: EvalProtocol, model, cache_dir: str, feature_fn=None) -> dict:
    """Classifier outputs (and external features) of 2 disjoint real test sets, cached by
    protocol."""
    path = os.path.join(cache_dir, f"real_stats_{p.key()}.npz")
    if os.path.isfile(path):
        return dict(np.load(path))
    stats = {}
    for name, offset in (("a", 0), ("b", int(math.ceil(p.num_samples / 32)) * 32)):
        real = _real_videos(p, p.num_samples, offset)
        out = classifier_lib.predict(model, real["video"])
        stats.update({f"{name}_{k}": v for k, v in out.items()})
        stats[f"{name}_label"] = real["label"]
        if feature_fn is not None:
            stats[f"{name}_external"] = _batched(feature_fn, real["video"])
    os.makedirs(cache_dir, exist_ok=True)
    with errors.atomic_output(path, ".partial.npz") as tmp:
        np.savez(tmp, **stats)
    return stats


def _classifier_metrics(out: dict, real_features: np.ndarray, labels=None) -> dict:
    values = {"is": metrics.inception_score(out["action"]),
              "h_y": metrics.marginal_entropy(out["action"]),
              "h_y_given_v": metrics.conditional_entropy(out["action"]),
              "fd": metrics.frechet_distance_from_features(out["features"], real_features)}
    if labels is not None:
        values["label_accuracy"] = float((out["action"].argmax(1) == labels).mean())
    return values


def _generate(gan, latents: dict, batch_size: int = 32) -> np.ndarray:
    """Videos in [-1, 1] on the uint8 grid: what users receive (the export serves uint8, and
    real videos are uint8 too), so a checkpoint and its export evaluate alike."""
    n = len(next(iter(latents.values())))

    @tf.function
    def fn(z):
        return gan.generate(z, training=False)

    chunks = [fn({k: v[i:i + batch_size] for k, v in latents.items()}).numpy()
              for i in range(0, n, batch_size)]
    return viz.from_uint8(viz.to_uint8(np.concatenate(chunks)))


def _appearance_preservation(gan, clf, p: EvalProtocol, repeat: int, groups: int = 16,
                             per_group: int = 4):
    """Groups share the appearance latent(s) and vary the motion latent(s) (by declared role)."""
    n = groups * per_group
    labels = tf.constant(np.arange(n) % p.classifier.num_classes, tf.int32) \
        if gan.cfg.conditional else None
    latents = gan.sample_inputs(n, p.seed + 7_000_000 + repeat * n, labels)
    index = np.repeat(np.arange(groups) * per_group, per_group)
    # An image input carries the appearance of image-to-video models.
    latents = {k: tf.gather(v, index) if gan.input_roles().get(k) in ("appearance", "image")
               else v for k, v in latents.items()}
    identity = classifier_lib.predict(clf, _generate(gan, latents))["identity"].argmax(1)
    identity = identity.reshape(groups, per_group)
    return float((identity[:, 1:] == identity[:, :1]).mean())


def evaluate_model(gan, clf, p: EvalProtocol, real: dict, wanted=METRICS, log=print,
                   feature_fn=None) -> dict:
    """Metrics over `repeats` generated sets, with the experimental and mathematical bounds."""
    conditional = gan.cfg.conditional
    per_repeat: dict[str, list] = {}
    for r in range(p.repeats):
        log(f"[evaluate] repeat {r + 1}/{p.repeats}: sampling {p.num_samples} videos")
        labels = np.arange(p.num_samples) % p.classifier.num_classes if conditional else None
        latents = gan.sample_inputs(p.num_samples, p.seed + r * p.num_samples,
                                    None if labels is None else tf.constant(labels, tf.int32))
        videos = _generate(gan, latents)
        out = classifier_lib.predict(clf, videos)
        for k, v in _classifier_metrics(out, real["a_features"], labels).items():
            per_repeat.setdefault(k, []).append(v)
        if feature_fn is not None:
            per_repeat.setdefault("fd_external", []).append(metrics.frechet_distance_from_features(
                _batched(feature_fn, videos), real["a_external"]))
        if "appearance_preservation" in wanted and p.classifier.num_identities:
            log(f"[evaluate] repeat {r + 1}/{p.repeats}: appearance preservation (fixed "
                f"appearance, varied motion)")
            per_repeat.setdefault("appearance_preservation", []).append(
                _appearance_preservation(gan, clf, p, r))
    if "s3" in wanted and conditional:
        log("[evaluate] S3: training a classifier on generated videos")
        labels = np.arange(p.num_samples) % p.classifier.num_classes
        latents = gan.sample_inputs(p.num_samples, p.seed + 9_000_000,
                                    tf.constant(labels, tf.int32))
        videos = _generate(gan, latents)
        res = float((classifier_lib.predict(clf, videos)["action"].argmax(1) == labels).mean())
        on_generated = classifier_lib.train_on_arrays(videos, labels, p.classifier, log)
        ser = classifier_lib.real_test_accuracy(on_generated, p.classifier)
        rer = classifier_lib.real_test_accuracy(clf, p.classifier)
        per_repeat["s3"] = [metrics.s3_score(ser, res, rer)]
        s3_parts = {"SeR": ser, "ReS": res, "ReR": rer}
    real_a = {"action": real["a_action"], "features": real["a_features"]}
    experimental = _classifier_metrics(real_a, real["b_features"], real["a_label"])
    experimental["s3"] = 1.0                       # real videos: SeR = ReS = ReR
    if feature_fn is not None:
        experimental["fd_external"] = metrics.frechet_distance_from_features(
            real["a_external"], real["b_external"])
    k = p.classifier.num_classes
    mathematical = {"is": float(k), "h_y": math.log(k), "h_y_given_v": 0.0, "fd": 0.0,
                    "label_accuracy": 1.0, "appearance_preservation": 1.0, "fd_external": 0.0,
                    "s3": None}
    results = {}
    for name, values in per_repeat.items():
        if name not in wanted:
            continue
        mean, std = metrics.mean_std(values)
        results[name] = {"mean": mean, "std": std, "values": values, "better": _BETTER[name],
                         "experimental_bound": experimental.get(name),
                         "mathematical_bound": mathematical[name]}
    if "s3" in results:
        results["s3"]["parts"] = s3_parts
    return results


#: stream of the image-to-video test triples: far from any training seed (the triples of a run
#: with --seed=s come from streams s and s + 17)
_TRANSFER_TEST_SEED = 1_000_003


def image_to_video_results(gan, data, num_videos: int = 64, best_of: int = 25, seed: int = 0,
                           log=print) -> dict:
    """Dual-MTGAN's protocol on synthetic_actions, in evaluate_model's result format:
    transfer_psnr / transfer_ssim (motion transfer vs the exact ground truth) with the
    copy-source and repeat-target references as their own rows, and best_of_k_psnr /
    best_of_k_ssim (per time step in "per_step"). `data` is the run's DataConfig."""
    from tfvidgen.eval import transfer as transfer_eval
    if data.dataset != "synthetic_actions":
        raise ValueError(f"image-to-video scores need the renderer's ground truth "
                         f"(--dataset=synthetic_actions), not {data.dataset}")
    frames, size, stride = data.num_frames, data.resolution, 1
    test_seed = _TRANSFER_TEST_SEED + seed
    triples = transfer_eval.transfer_set(num_videos, test_seed, frames, size, stride)

    def uint8_grid(videos):             # what users receive, as in _generate
        return viz.from_uint8(viz.to_uint8(videos))

    def transfer_fn(images, videos):
        return uint8_grid(gan.transfer(tf.constant(images), tf.constant(videos)).numpy())

    def generate_fn(first_frames, sample):
        n = len(first_frames)
        latents = gan.sample_inputs(n, seed + 1_000 * (sample + 1) * max(1, num_videos))
        latents["image"] = tf.constant(first_frames)
        return uint8_grid(gan.generate(latents).numpy())

    quiet = lambda *_: None     # noqa: E731
    scores = {"model": transfer_eval.motion_transfer_scores(transfer_fn, triples, log=quiet),
              "copy_source": transfer_eval.motion_transfer_scores(
                  lambda image, video: video, triples, log=quiet),
              "repeat_target": transfer_eval.motion_transfer_scores(
                  lambda image, video: np.repeat(image[:, None], frames, axis=1), triples,
                  log=quiet)}
    log(f"[evaluate] motion transfer on {num_videos} exact triples: PSNR "
        f"{scores['model']['psnr']:.2f} (copy source {scores['copy_source']['psnr']:.2f}, "
        f"repeat target {scores['repeat_target']['psnr']:.2f})")
    continuation = transfer_eval.continuation_set(num_videos, test_seed + 1, frames, size, stride)
    best = transfer_eval.best_of_k_scores(generate_fn, continuation, k=best_of, log=log)
    results = {}
    math_bound = {"psnr": None, "ssim": 1.0}
    for metric in ("psnr", "ssim"):
        for name, key in (("model", f"transfer_{metric}"),
                          ("copy_source", f"transfer_{metric}_copy_source"),
                          ("repeat_target", f"transfer_{metric}_repeat_target")):
            value = scores[name][metric]
            results[key] = {"mean": value, "std": 0.0, "values": [value], "better": "higher",
                            "experimental_bound": None, "mathematical_bound": math_bound[metric],
                            "per_step": scores[name][f"{metric}_per_step"]}
        results[f"best_of_{best_of}_{metric}"] = {
            "mean": best[metric], "std": 0.0, "values": [best[metric]], "better": "higher",
            "experimental_bound": None, "mathematical_bound": math_bound[metric],
            "per_step": best[f"{metric}_per_step"]}
    return results


def markdown_table(results: dict) -> str:
    lines = ["| metric | value (mean +- std) | experimental bound (real test) | math bound | better |",
             "|---|---|---|---|---|"]
    for name, r in results.items():
        bound = r["experimental_bound"]
        spread = f"{r['mean']:.3f} +- {r['std']:.3f}" if len(r["values"]) > 1 \
            else f"{r['mean']:.3f} (one set)"
        lines.append(f"| {name} | {spread} | "
                     f"{_fmt(bound)} | {_fmt(r['mathematical_bound'])} | {r['better']} |")
    return "\n".join(lines)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"
