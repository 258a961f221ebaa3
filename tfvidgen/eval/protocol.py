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
  motion_preservation    the mirror: fixed motion latent(s) (and label, or driving video), varied
                         appearance: share of videos whose predicted action stays that of the
                         group's first video (models with a motion or video input)
                         On synthetic data both preservations get their experimental bound from
                         the renderer's true factors: real clips sharing actor and background
                         (motion varied), or sharing action and every motion factor (actor and
                         background varied), scored by the same classifier.
  label_effect           conditional models: how far a new label moves a video, as a share of how
                         far new latents move it: mean |G(z, y') - G(z, y)| / mean |G(z', y) -
                         G(z, y)| over one set (y' another class, z' every other input redrawn).
                         0: the label is ignored. A diagnostic with no real-data bound (real
                         videos have no z to hold).
  s3                     MVT's S3 = sqrt((SeR/ReR)(ReS/ReR)), conditional models only: SeR = real
                         test accuracy of a fresh classifier trained on generated videos with
                         their requested labels, ReS = real classifier on those videos, ReR =
                         real classifier on real test videos (one sample set; bound 1 = real)
  fd_external            Frechet distance of features from a user-provided SavedModel (e.g. an
                         I3D the user exported: FVD-style), when --feature_model is given
Image-to-video models (a `transfer(image, video)` method, e.g. Dual-MTGAN) also get
image_to_video_results (tfvidgen.eval.transfer) on real test clips of any dataset: self-transfer
PSNR/SSIM (a clip's own first frame and motion vs the clip) and the paper's best-of-K PSNR/SSIM
of stochastic generation from a test clip's first frame (headline: the best video by mean SSIM;
secondary: the per-time-step maximum); on synthetic_actions also motion-transfer PSNR/SSIM
against the renderer's exact ground truth beside the copy-source / repeat-target references.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os

import numpy as np
import tensorflow as tf

from tfvidgen import errors, sources, viz
from tfvidgen.eval import classifier as classifier_lib
from tfvidgen.eval import metrics

__all__ = ["EvalProtocol", "real_statistics", "evaluate_model", "METRICS", "markdown_table",
           "image_to_video_results", "reference_fvd", "write_report"]

METRICS = ("is", "h_y", "h_y_given_v", "fd", "label_accuracy", "appearance_preservation",
           "motion_preservation", "label_effect", "s3",
           "fd_external")
_BETTER = {"is": "higher", "h_y": "higher", "h_y_given_v": "lower", "fd": "lower",
           "label_accuracy": "higher", "appearance_preservation": "higher", "motion_preservation": "higher", "label_effect": "higher", "s3": "higher", "fd_external": "lower"}


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


#: input roles a preservation group shares: what "the same appearance" / "the same motion" is
_APPEARANCE_ROLES = ("appearance", "image")
_MOTION_ROLES = ("motion", "label", "video")


def _preservation(gan, clf, p: EvalProtocol, repeat: int, shared_roles: tuple, head: str,
                  seed_offset: int, groups: int = 16, per_group: int = 4) -> float:
    """Groups share the inputs of `shared_roles` (by declared role) and vary the others: the
    share of videos whose predicted `head` equals that of the group's first video."""
    n = groups * per_group
    labels = tf.constant(np.arange(n) % p.classifier.num_classes, tf.int32) \
        if gan.cfg.conditional else None
    latents = sources.seeded_inputs(gan, n, p.seed + seed_offset + repeat * n, labels)
    index = np.repeat(np.arange(groups) * per_group, per_group)
    latents = {k: tf.gather(v, index) if gan.input_roles().get(k) in shared_roles else v
               for k, v in latents.items()}
    predicted = classifier_lib.predict(clf, _generate(gan, latents))[head].argmax(1)
    predicted = predicted.reshape(groups, per_group)
    return float((predicted[:, 1:] == predicted[:, :1]).mean())


def _appearance_preservation(gan, clf, p: EvalProtocol, repeat: int) -> float:
    """Fixed appearance (an image input carries it in image-to-video models), varied motion."""
    return _preservation(gan, clf, p, repeat, _APPEARANCE_ROLES, "identity", 7_000_000)


def _motion_preservation(gan, clf, p: EvalProtocol, repeat: int) -> float:
    """Fixed motion (and label), varied appearance."""
    return _preservation(gan, clf, p, repeat, _MOTION_ROLES, "action", 8_000_000)


def _label_effect(gan, p: EvalProtocol, repeat: int) -> float:
    """mean |G(z, y') - G(z, y)| / mean |G(z', y) - G(z, y)| (see the module docstring)."""
    n, k = p.num_samples, p.classifier.num_classes
    labels = np.arange(n) % k
    other_labels = (labels + 1 + (np.arange(n) // k) % (k - 1)) % k      # never the same class
    seed = p.seed + 5_000_000 + repeat * 2 * n
    latents = sources.seeded_inputs(gan, n, seed, labels)
    videos = _generate(gan, latents)
    label_input = next(name for name, role in gan.input_roles().items() if role == "label")
    relabelled = _generate(gan, {**latents, label_input: tf.constant(other_labels, tf.int32)})
    redrawn = _generate(gan, sources.seeded_inputs(gan, n, seed + n, labels))
    return float(np.abs(relabelled - videos).mean() / max(np.abs(redrawn - videos).mean(), 1e-12))


def _has_motion_input(gan) -> bool:
    return any(role in ("motion", "video") for role in gan.input_roles().values())


#: the factors a renderer group shares, per dataset: (appearance, motion)
_TRUE_FACTORS = {
    "synthetic_actions": (("actor", "background"),
                          ("action", "phase", "speed", "amplitude", "start_x", "direction")),
    "synthetic_shapes": (("shape", "colour", "background"), ("motion", "phase", "speed", "amplitude")),
}


def true_factor_preservation(p: EvalProtocol, clf, groups: int = 16,
                             per_group: int = 4) -> dict:
    """The renderer's bounds of appearance_preservation and motion_preservation: real clips
    sharing the true appearance (or motion) factors, the rest drawn anew, scored by the
    classifier as generated videos are. {} for datasets without a renderer."""
    from tfvidgen.data import synthetic
    c = p.classifier
    if c.dataset not in _TRUE_FACTORS:
        return {}
    stream = p.seed + 11_000_000            # far from the training and test streams
    out, drawn_count = {}, 0
    for metric, shared, head in (("appearance_preservation", _TRUE_FACTORS[c.dataset][0], "identity"),
                                 ("motion_preservation", _TRUE_FACTORS[c.dataset][1], "action")):
        videos = []
        for _ in range(groups):
            first = synthetic.sample_factors(c.dataset, stream, drawn_count)
            for j in range(per_group):
                drawn = synthetic.sample_factors(c.dataset, stream, drawn_count + j)
                f = dataclasses.replace(drawn, **{k: getattr(first, k) for k in shared})
                videos.append(synthetic.render(c.dataset, f, range(c.num_frames), c.resolution))
            drawn_count += per_group
        predicted = classifier_lib.predict(clf, viz.from_uint8(np.stack(videos)))[head].argmax(1)
        predicted = predicted.reshape(groups, per_group)
        out[metric] = float((predicted[:, 1:] == predicted[:, :1]).mean())
    return out


def evaluate_model(gan, clf, p: EvalProtocol, real: dict, wanted=METRICS, log=print,
                   feature_fn=None) -> dict:
    """Metrics over `repeats` generated sets, with the experimental and mathematical bounds."""
    conditional = gan.cfg.conditional
    per_repeat: dict[str, list] = {}
    for r in range(p.repeats):
        log(f"[evaluate] repeat {r + 1}/{p.repeats}: sampling {p.num_samples} videos")
        labels = np.arange(p.num_samples) % p.classifier.num_classes if conditional else None
        latents = sources.seeded_inputs(gan, p.num_samples, p.seed + r * p.num_samples, labels)
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
        if "motion_preservation" in wanted and _has_motion_input(gan):
            log(f"[evaluate] repeat {r + 1}/{p.repeats}: motion preservation (fixed motion, "
                f"varied appearance)")
            per_repeat.setdefault("motion_preservation", []).append(
                _motion_preservation(gan, clf, p, r))
        if "label_effect" in wanted and conditional:
            per_repeat.setdefault("label_effect", []).append(_label_effect(gan, p, r))
    if "s3" in wanted and conditional:
        log("[evaluate] S3: training a classifier on generated videos")
        labels = np.arange(p.num_samples) % p.classifier.num_classes
        latents = sources.seeded_inputs(gan, p.num_samples, p.seed + 9_000_000, labels)
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
    if {"appearance_preservation", "motion_preservation"} & set(per_repeat):
        experimental.update(true_factor_preservation(p, clf))
    if feature_fn is not None:
        experimental["fd_external"] = metrics.frechet_distance_from_features(
            real["a_external"], real["b_external"])
    k = p.classifier.num_classes
    mathematical = {"is": float(k), "h_y": math.log(k), "h_y_given_v": 0.0, "fd": 0.0,
                    "label_accuracy": 1.0, "appearance_preservation": 1.0,
                    "motion_preservation": 1.0, "fd_external": 0.0, "label_effect": None,
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


#: stream of the image-to-video test triples and clips: far from any training seed (the triples
#: of a run with --seed=s come from streams s and s + 17)
_TRANSFER_TEST_SEED = 1_000_003


def _image_to_video_test_clips(data, num: int, test_seed: int, log) -> dict:
    """Real test clips for self-transfer and best-of-K: {"video" [N, T, H, W, 3] in [-1, 1],
    "label" [N], "source"}. synthetic_actions: the renderer's continuation_set (stream
    test_seed + 1); records: N clips of the test split (the train split when there is none),
    each record at most once, consecutive frames from a random start, no flip/crop; other
    synthetic sets: clips of stream test_seed (disjoint from training's)."""
    from tfvidgen.data import pipeline, synthetic
    from tfvidgen.eval import transfer as transfer_eval
    frames, size = data.num_frames, data.resolution
    if data.dataset == "synthetic_actions":
        clips = transfer_eval.continuation_set(num, test_seed + 1, frames, size, 1)
        labels = [synthetic.sample_factors("synthetic_actions", test_seed + 1, i).action
                  for i in range(num)]
        return {"video": clips["ground_truth"], "label": np.array(labels, np.int32),
                "source": "synthetic_actions test videos"}
    cfg = dataclasses.replace(data, max_stride=1, random_flip=False, random_crop=0.0)
    source, split = f"{data.dataset} test videos", "test"     # synthetic: test_seed's stream
    if data.dataset == "records":
        from tfvidgen.data import records
        split = classifier_lib.real_split(data)
        available = sum(s["count"] for s in records.read_manifest(data.data_dir)["splits"][split])
        if available < num:
            log(f"[evaluate] image-to-video: the {split} split has {available} videos "
                f"(asked for {num})")
            num = available
        if num < 1:
            raise ValueError(f"the {split} split of --data_dir={data.data_dir} has no videos")
        # One shuffle window = the whole split: its first `num` clips are distinct records.
        cfg = dataclasses.replace(cfg, shuffle_buffer=available)
        source = f"records {split} split" + (" (no test split)" if split == "train" else "")
    videos, labels = [], []
    for batch in pipeline.make_dataset(cfg, min(num, 32), test_seed, split=split):
        videos.append(batch["video"].numpy())
        labels.append(batch["label"].numpy())
        if sum(len(v) for v in videos) >= num:
            break
    return {"video": np.concatenate(videos)[:num], "label": np.concatenate(labels)[:num],
            "source": source}


def _transfer_row(value: float, per_step: list, math_bound, note: str) -> dict:
    return {"mean": value, "std": 0.0, "values": [value], "better": "higher",
            "experimental_bound": None, "mathematical_bound": math_bound, "per_step": per_step,
            "note": note}


def image_to_video_results(gan, data, num_videos: int = 64, best_of: int = 25, seed: int = 0,
                           log=print) -> dict:
    """Dual-MTGAN's protocol, in evaluate_model's result format (each row also has "per_step"
    and a "note" saying what it is). `data` is the run's DataConfig.

    On every dataset, over real test clips (_image_to_video_test_clips):
      self_transfer_psnr / _ssim: a clip's own first frame with its own motion vs the clip
        (deterministic reconstruction), beside the repeat-first-frame reference;
      best_of_K_psnr / _ssim (headline): per clip the one of K stochastic videos from its first
        frame with the highest mean SSIM (the paper's "video with the highest SSIM"), its PSNR /
        SSIM; best_of_K_psnr_per_step_max / _ssim_per_step_max (secondary): per time step the
        best of the K, each maximised on its own.
      Their means (and the best video's choice) leave out frame 0, the given image, which a
      copy reproduces exactly; "per_step" lists every frame.
    On synthetic_actions also transfer_psnr / _ssim: motion transfer across appearances vs the
    renderer's exact ground truth, beside the copy-source and repeat-target references.
    Conditional models get the driving / test video's action label."""
    from tfvidgen.eval import transfer as transfer_eval
    frames, size = data.num_frames, data.resolution
    test_seed = _TRANSFER_TEST_SEED + seed
    conditional = bool(getattr(gan.cfg, "conditional", False))

    def uint8_grid(videos):             # what users receive, as in _generate
        return viz.from_uint8(viz.to_uint8(videos))

    def transfer_fn(images, videos, labels=None):
        labels = None if labels is None else tf.constant(labels, tf.int32)
        return uint8_grid(gan.transfer(tf.constant(images), tf.constant(videos),
                                       labels).numpy())

    def generate_fn(first_frames, sample, labels=None):
        n = len(first_frames)
        latents = sources.seeded_inputs(gan, n, seed + 1_000 * (sample + 1) * max(1, num_videos),
                                        labels, images=first_frames)
        return uint8_grid(gan.generate(latents).numpy())

    def still(images, videos, *_):
        return np.repeat(images[:, None], videos.shape[1], axis=1)

    quiet = lambda *_: None     # noqa: E731
    math_bound = {"psnr": None, "ssim": 1.0}
    results = {}
    if data.dataset == "synthetic_actions":
        triples = transfer_eval.transfer_set(num_videos, test_seed, frames, size, 1)
        scores = {"": transfer_eval.motion_transfer_scores(transfer_fn, triples, log=quiet,
                                                           with_labels=conditional),
                  "_copy_source": transfer_eval.motion_transfer_scores(
                      lambda image, video: video, triples, log=quiet),
                  "_repeat_target": transfer_eval.motion_transfer_scores(still, triples,
                                                                         log=quiet)}
        log(f"[evaluate] motion transfer on {num_videos} exact triples: PSNR "
            f"{scores['']['psnr']:.2f} (copy source {scores['_copy_source']['psnr']:.2f}, "
            f"repeat target {scores['_repeat_target']['psnr']:.2f})")
        notes = {"": "motion transfer across appearances vs the renderer's ground truth",
                 "_copy_source": "reference: the source video itself",
                 "_repeat_target": "reference: the target image repeated"}
        for metric in ("psnr", "ssim"):
            for suffix, s in scores.items():
                results[f"transfer_{metric}{suffix}"] = _transfer_row(
                    s[metric], s[f"{metric}_per_step"], math_bound[metric], notes[suffix])
    clips = _image_to_video_test_clips(data, num_videos, test_seed, log)
    own = transfer_eval.self_transfer_set(clips["video"], clips["label"])
    # Means from frame 1: frame 0 is the given image (a copy of it would score ~150 dB).
    scores = {"": transfer_eval.motion_transfer_scores(transfer_fn, own, log=quiet,
                                                       with_labels=conditional, from_frame=1),
              "_repeat_first_frame": transfer_eval.motion_transfer_scores(
                  still, own, log=quiet, from_frame=1)}
    log(f"[evaluate] self-transfer on {len(own['ground_truth'])} {clips['source']}: PSNR "
        f"{scores['']['psnr']:.2f} (repeat first frame "
        f"{scores['_repeat_first_frame']['psnr']:.2f})")
    notes = {"": f"a clip's first frame + its own motion vs the clip ({clips['source']}); "
                 f"mean over frames 1.., per_step from frame 0",
             "_repeat_first_frame": "reference: the first frame repeated; mean over frames 1.."}
    for metric in ("psnr", "ssim"):
        for suffix, s in scores.items():
            results[f"self_transfer_{metric}{suffix}"] = _transfer_row(
                s[metric], s[f"{metric}_per_step"], math_bound[metric], notes[suffix])
    continuation = {"first_frame": clips["video"][:, 0], "ground_truth": clips["video"],
                    "label": clips["label"]}
    best = transfer_eval.best_of_k_scores(generate_fn, continuation, k=best_of, log=log,
                                          with_labels=conditional, from_frame=1)
    for metric in ("psnr", "ssim"):
        results[f"best_of_{best_of}_{metric}"] = _transfer_row(
            best[metric], best[f"{metric}_per_step"], math_bound[metric],
            f"per clip the one of {best_of} samples with the highest mean SSIM "
            f"({clips['source']}); means over frames 1.., per_step from frame 0")
        step_max = best["per_step_max"]
        results[f"best_of_{best_of}_{metric}_per_step_max"] = _transfer_row(
            step_max[metric], step_max[f"{metric}_per_step"], math_bound[metric],
            f"per time step the best of {best_of} samples, {metric} maximised on its own; "
            f"mean over frames 1..")
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


def reference_fvd(network, fvd_protocol, gan, data, cache_dir: str) -> tuple[dict, dict]:
    """(results row, metrics.json record) of the reference FVD (tfvidgen.eval.fvd) of `gan`
    against the real clips of `data` (a DataConfig), with the network spelled out."""
    from tfvidgen.eval import fvd
    real = fvd.real_features(network, data, fvd_protocol, cache_dir)
    value = metrics.frechet_distance_from_features(fvd.fake_features(network, gan, fvd_protocol), real)
    row = {"mean": value, "std": 0.0, "values": [value], "experimental_bound": None,
           "mathematical_bound": 0.0, "better": "lower"}
    record = {"value": value, "protocol": dataclasses.asdict(fvd_protocol),
              "generator_resolution": data.resolution, "network": os.path.abspath(network.path),
              "network_sha256": network.sha256, "signature": network.signature_name,
              "network_input_size": network.size}
    return row, record


def write_report(eval_dir: str, tensorboard_dir: str, record: dict) -> str:
    """Writes record (step, results, classifier accuracy, ...) as eval_dir/metrics.json, the
    results table as eval_dir/metrics.md and each result's mean as a TensorBoard scalar
    eval/<name>; returns the table."""
    results, step = record["results"], record["step"]
    table = markdown_table(results)
    errors.write_text_atomically(os.path.join(eval_dir, "metrics.json"),
                                 json.dumps(record, indent=2, sort_keys=True))
    errors.write_text_atomically(os.path.join(eval_dir, "metrics.md"),
                                 f"Step {step}, classifier real test accuracy "
                                 f"{record['classifier_test_accuracy']:.3f}\n\n{table}\n")
    writer = tf.summary.create_file_writer(tensorboard_dir)
    with writer.as_default(step=step):
        for name, r in results.items():
            tf.summary.scalar(f"eval/{name}", r["mean"])
    writer.flush()
    return table
