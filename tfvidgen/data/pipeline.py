"""The one input pipeline: config -> batched, prefetched tf.data.Dataset of element dicts.

Element (the data contract every model reads), batched to [B, ...]:
  video     float32 [T, H, W, 3] in [-1, 1]
  label     int32   action class (0 when unlabelled)
  identity  int32   actor id (-1 when unknown)
  seed      int64 [2] per-example key; models draw the example's latents from it with stateless RNG,
            so latents do not depend on how a global batch is split across replicas
  synthetic sources also carry the ground-truth factors named in synthetic.FACTOR_KEYS.

Determinism: the order of source videos comes from a stateless shuffle keyed by (seed, window
number), every per-clip choice (stride, start, flip, crop) from stateless RNG keyed by (seed, global
example number). So a run, and a run resumed at step k (`start_step=k` skips cheap indices/records
before any decoding), see the same data, whatever TF's global seed is (Dataset.shuffle's order
would change with tf.random.set_seed: the cached real-data statistics of evaluation once differed
between a process that had trained a classifier and one that had not).
Several batches per step: with `real_batches=k > 1` every element of a step's batch dict gets a
leading k axis ([k, B, ...]): k consecutive, disjoint batches of the one stream (e.g. MVT's two D
updates on fresh data). k = 1 yields [B, ...] exactly as before.
Triples (make_triples_dataset): image-to-video training data. On synthetic_actions rendered exactly
by tfvidgen.data.triples: target_image [H, W, 3] (the target actor in a pose of its own),
source_video and target_video [T, H, W, 3] (the target's actor and background doing the source's
motion: the ground truth), label (the source's action) and seed; no flip/crop, which would have to
act alike on all three. On records there is no ground truth of another motion: source_video is
the (augmented) clip make_dataset would yield, and target_video a second real clip, V_y, that
target_image (one of its frames) comes from: ANOTHER clip of the same identity when the record has
one (identity >= 0) and the shuffle window holding it (data.shuffle_buffer records, the unit of
the stateless shuffle) has another record of that identity, with target_label its label; otherwise
the clip itself (target_video = source_video, target_label = label: a self-supervised triple).
Other synthetic sources (synthetic_shapes) give the same-clip triples. Same order, clip sampling,
resume, sharding and `real_batches` as make_dataset.
Sharding: input pipeline i of n (tf.distribute.InputContext) sees only videos i, i+n, i+2n, ... of a
synthetic set, or every n-th shard file (every n-th record when there are fewer files than pipelines).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfvidgen import pixels
from tfvidgen.config import DataConfig
from tfvidgen.data import records, synthetic, triples

__all__ = ["make_dataset", "make_triples_dataset", "TRAINING_DATA", "dataset_info",
           "elements_per_step"]

_SALT_STRIDE, _SALT_START, _SALT_FLIP, _SALT_CROP, _SALT_IMAGE_FRAME, _SALT_PARTNER = 1, 2, 3, 4, 5, 6


def dataset_info(data: DataConfig) -> dict:
    """num_classes, num_identities and class_names of the configured source."""
    if data.dataset == "records":
        manifest = records.read_manifest(data.data_dir)
        names = manifest.get("class_names", [])
        return {"num_classes": max(1, len(names)), "class_names": names,
                "num_identities": len(manifest.get("identity_names", []))}
    names = synthetic.ACTIONS if data.dataset == "synthetic_actions" else synthetic.SHAPE_MOTIONS
    return {"num_classes": len(names), "class_names": list(names),
            "num_identities": synthetic.num_identities(data.dataset)}


def elements_per_step(global_batch_size: int, input_context=None, real_batches: int = 1) -> int:
    """How many elements one input pipeline yields per training step (k batches of each replica
    it feeds), so `start_step` skips exactly what the earlier steps consumed."""
    if input_context is None:
        return global_batch_size * real_batches
    return global_batch_size // input_context.num_input_pipelines * real_batches


def make_dataset(data: DataConfig, global_batch_size: int, seed: int, input_context=None,
                 start_step: int = 0, split: str = "train",
                 real_batches: int = 1) -> tf.data.Dataset:
    """Returns an infinite dataset of batched element dicts.

    Args:
      data: the data config.
      global_batch_size: batch summed over all replicas; each pipeline batches per replica.
      seed: data seed (order, clip sampling, augmentation, example keys).
      input_context: tf.distribute.InputContext under distribute_datasets_from_function, else None.
      start_step: training step to resume at; the elements of earlier steps are skipped cheaply.
      split: which split of a records dataset ("train" or "test"); synthetic data ignores it
        (its test videos come from another seed).
      real_batches: batches one training step consumes (the model's real_batches_per_step());
        above 1, each yielded dict has a leading axis of that size.
    """
    num_pipelines, pipeline_id, batch, skip = _layout(global_batch_size, input_context,
                                                      start_step, real_batches)

    if data.dataset == "records":
        keys, element_fn = _records_source(data, seed, num_pipelines, pipeline_id, split)
    else:
        keys, element_fn = _synthetic_source(data, seed, num_pipelines, pipeline_id)
    keys = keys.repeat().skip(skip).enumerate(start=skip)

    def build(n, key):
        example_key = n * num_pipelines + pipeline_id          # unique over all pipelines
        example_seed = tf.stack([tf.constant(seed, tf.int64), example_key])
        element = element_fn(key, example_seed)
        element["video"] = _augment(element["video"], data, example_seed)
        element["seed"] = example_seed
        return element

    return _batched(keys.map(build, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True),
                    batch, real_batches)


def make_triples_dataset(data: DataConfig, global_batch_size: int, seed: int, input_context=None,
                         start_step: int = 0, real_batches: int = 1,
                         split: str = "train") -> tf.data.Dataset:
    """Infinite dataset of batched image-to-video triples; the arguments mean what they mean for
    make_dataset. On synthetic_actions element i of the stream is triple (seed, video index of i),
    on a clip of frames sampled per example as make_dataset samples them; on records, the clip
    make_dataset would yield as source_video, and a partner clip of its identity (or the clip
    itself) as target_video with one of its frames as target_image (the module docstring)."""
    if data.dataset == "records":
        return _identity_triples(data, global_batch_size, seed, input_context, start_step, split,
                                 real_batches)
    if data.dataset != "synthetic_actions":
        return make_dataset(data, global_batch_size, seed, input_context, start_step, split,
                            real_batches).map(_same_clip_triples(real_batches > 1))
    num_pipelines, pipeline_id, batch, skip = _layout(global_batch_size, input_context,
                                                      start_step, real_batches)
    indices = _synthetic_indices(data, seed, num_pipelines, pipeline_id)
    keys = indices.repeat().skip(skip).enumerate(start=skip)
    size, frames_shape = data.resolution, [data.num_frames, data.resolution, data.resolution, 3]

    def render(index, frames):
        target, source, truth, label = triples.transfer_triple(seed, int(index), frames, size)
        return target, source, truth, np.int32(label)

    def build(n, index):
        example_seed = tf.stack([tf.constant(seed, tf.int64), n * num_pipelines + pipeline_id])
        frames = _clip_indices(data.video_length, data.num_frames, data.max_stride, example_seed)
        target, source, truth, label = tf.numpy_function(
            render, [index, frames], [tf.uint8, tf.uint8, tf.uint8, tf.int32], stateful=False)
        return {"target_image": pixels.from_uint8(tf.ensure_shape(target, [size, size, 3])),
                "source_video": pixels.from_uint8(tf.ensure_shape(source, frames_shape)),
                "target_video": pixels.from_uint8(tf.ensure_shape(truth, frames_shape)),
                "label": tf.ensure_shape(label, []), "seed": example_seed}

    return _batched(keys.map(build, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True),
                    batch, real_batches)


def _identity_triples(data: DataConfig, global_batch_size: int, seed: int, input_context,
                      start_step: int, split: str, real_batches: int) -> tf.data.Dataset:
    """Records triples: make_dataset's clip as source_video; target_video another clip of the
    same identity (same shuffle window) or, failing that, the clip; target_image a frame of
    target_video."""
    num_pipelines, pipeline_id, batch, skip = _layout(global_batch_size, input_context,
                                                      start_step, real_batches)
    serialized, element_fn = _records_source(data, seed, num_pipelines, pipeline_id, split)
    # The partner stream is cut in the shuffle's own windows, so a record's partner is a function
    # of (seed, window number, its position): resuming (skip) finds the same partners.
    keys = _with_partners(serialized, data.shuffle_buffer, seed).skip(skip).enumerate(start=skip)

    def build(n, key, partner, has_partner):
        example_seed = tf.stack([tf.constant(seed, tf.int64), n * num_pipelines + pipeline_id])
        element = element_fn(key, example_seed)
        video = _augment(element["video"], data, example_seed)
        frame_key = tf.random.experimental.stateless_fold_in(example_seed, _SALT_IMAGE_FRAME)

        def other_clip():
            partner_seed = tf.random.experimental.stateless_fold_in(example_seed, _SALT_PARTNER)
            other = element_fn(partner, partner_seed)
            return _augment(other["video"], data, partner_seed), other["label"]

        # V_y is the clip the target image comes from, so the Eq. 5 mismatch pairs see a second
        # real video (they are dropped only where V_y is V: no partner).
        target_clip, target_label = tf.cond(has_partner, other_clip,
                                            lambda: (video, element["label"]))
        frame = tf.random.stateless_uniform([], frame_key, maxval=data.num_frames,
                                            dtype=tf.int32)
        return {"label": element["label"], "identity": element["identity"], "seed": example_seed,
                "target_image": target_clip[frame], "source_video": video,
                "target_video": target_clip, "target_label": target_label}

    return _batched(keys.map(lambda n, k: build(n, *k), num_parallel_calls=tf.data.AUTOTUNE,
                             deterministic=True), batch, real_batches)


def _with_partners(serialized: tf.data.Dataset, window: int, seed: int) -> tf.data.Dataset:
    """Record stream -> (record, partner record, has_partner): the partner is another record of
    the window with the same identity (>= 0), drawn by stateless RNG from (seed, window)."""
    def pair(window_number, items):
        identities = tf.io.parse_example(items, {"identity": tf.io.FixedLenFeature(
            [], tf.int64, default_value=-1)})["identity"]
        size = tf.shape(items)[0]
        same = tf.equal(identities[:, None], identities[None, :])
        candidates = same & ~tf.eye(size, dtype=tf.bool) & (identities >= 0)[:, None]
        key = tf.stack([tf.constant(seed, tf.int64) + _SALT_PARTNER, window_number])
        scores = tf.random.stateless_uniform([size, size], seed=key)
        partner = tf.argmax(tf.where(candidates, scores, -1.0), axis=1, output_type=tf.int32)
        has_partner = tf.reduce_any(candidates, axis=1)
        return tf.data.Dataset.from_tensor_slices((items, tf.gather(items, partner), has_partner))

    return serialized.batch(window).enumerate().flat_map(pair)


def _same_clip_triples(several: bool):
    """Batch of clips -> self-supervised triples: target_image a frame of each clip, chosen by
    stateless RNG from the example's key, source_video = target_video = the clip."""
    def triple(batch):
        videos, seeds = batch.pop("video"), batch["seed"]
        flat_videos = tf.reshape(videos, tf.concat([[-1], tf.shape(videos)[-4:]], 0))
        flat_seeds = tf.reshape(seeds, [-1, 2])
        num_frames = tf.shape(videos)[-4]

        def pick(args):
            video, key = args
            frame = tf.random.stateless_uniform(
                [], tf.random.experimental.stateless_fold_in(key, _SALT_IMAGE_FRAME),
                maxval=num_frames, dtype=tf.int32)
            return video[frame]

        images = tf.map_fn(pick, (flat_videos, flat_seeds), fn_output_signature=tf.float32)
        shape = tf.concat([tf.shape(videos)[:2 if several else 1], tf.shape(videos)[-3:]], 0)
        return {**batch, "target_image": tf.reshape(images, shape), "source_video": videos,
                "target_video": videos}
    return triple


def _layout(global_batch_size: int, input_context, start_step: int, real_batches: int):
    """(number of pipelines, this pipeline's id, per-replica batch, elements to skip)."""
    if real_batches < 1:
        raise ValueError(f"real_batches={real_batches} must be at least 1")
    if input_context is None:
        num_pipelines, pipeline_id, batch = 1, 0, global_batch_size
    else:
        num_pipelines = input_context.num_input_pipelines
        pipeline_id = input_context.input_pipeline_id
        batch = input_context.get_per_replica_batch_size(global_batch_size)
    skip = start_step * elements_per_step(global_batch_size, input_context, real_batches)
    return num_pipelines, pipeline_id, batch, skip


def _batched(ds: tf.data.Dataset, batch: int, real_batches: int) -> tf.data.Dataset:
    ds = ds.batch(batch, drop_remainder=True)
    if real_batches > 1:        # one replica's step: k consecutive per-replica batches
        ds = ds.batch(real_batches, drop_remainder=True)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    # We shard by hand (above); automatic sharding would drop or duplicate data.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options)


def _clip_indices(length, num_frames: int, max_stride: int, example_seed):
    """Frame indices of a clip: random stride in [1, max feasible] and random start."""
    length = tf.cast(length, tf.int32)
    feasible = tf.maximum(1, (length - 1) // max(1, num_frames - 1))
    top = tf.minimum(max_stride, feasible)
    stride = tf.random.stateless_uniform(
        [], tf.random.experimental.stateless_fold_in(example_seed, _SALT_STRIDE),
        minval=1, maxval=top + 1, dtype=tf.int32)
    span = (num_frames - 1) * stride + 1
    start = tf.random.stateless_uniform(
        [], tf.random.experimental.stateless_fold_in(example_seed, _SALT_START),
        minval=0, maxval=tf.maximum(1, length - span + 1), dtype=tf.int32)
    # Videos shorter than one clip repeat their last frame.
    return tf.minimum(start + stride * tf.range(num_frames), length - 1)


def _stateless_shuffle(ds: tf.data.Dataset, window: int, seed: int) -> tf.data.Dataset:
    """ds repeated forever, in windows of `window` consecutive elements each permuted by stateless
    RNG keyed by (seed, window number): a function of `seed` alone."""
    def permute(window_number, items):
        key = tf.stack([tf.constant(seed, tf.int64), window_number])
        order = tf.argsort(tf.random.stateless_uniform([tf.shape(items)[0]], seed=key))
        return tf.data.Dataset.from_tensor_slices(tf.gather(items, order))

    return ds.repeat().batch(window).enumerate().flat_map(permute)


def _synthetic_indices(data: DataConfig, seed: int, num_pipelines: int, pipeline_id: int):
    """This pipeline's synthetic video indices, reshuffled every epoch by (seed, epoch)."""
    indices = tf.data.Dataset.range(pipeline_id, data.num_videos, num_pipelines)
    count = len(range(pipeline_id, data.num_videos, num_pipelines))
    if count == 0:
        raise ValueError(f"--num_videos={data.num_videos} is smaller than the number of input "
                         f"pipelines ({num_pipelines})")
    return _stateless_shuffle(indices, count, seed)        # one window = one epoch


def _synthetic_source(data: DataConfig, seed: int, num_pipelines: int, pipeline_id: int):
    indices = _synthetic_indices(data, seed, num_pipelines, pipeline_id)
    size, dataset = data.resolution, data.dataset

    def render(index, frames):
        factors = synthetic.sample_factors(dataset, seed, int(index))
        label, identity, extra = synthetic.label_identity_factors(factors)
        video = synthetic.render(dataset, factors, frames, size)
        return (video, np.int32(label), np.int32(identity), np.int32(extra["background"]),
                np.float32(extra["phase"]), np.float32(extra["speed"]),
                np.float32(extra["amplitude"]), np.float32(extra["start_x"]),
                np.int32(extra["direction"]))

    def element(index, example_seed):
        frames = _clip_indices(data.video_length, data.num_frames, data.max_stride, example_seed)
        out = tf.numpy_function(render, [index, frames],
                                [tf.uint8, tf.int32, tf.int32, tf.int32, tf.float32, tf.float32,
                                 tf.float32, tf.float32, tf.int32], stateful=False)
        video = tf.ensure_shape(out[0], [data.num_frames, size, size, 3])
        result = {"video": video, "label": tf.ensure_shape(out[1], []),
                  "identity": tf.ensure_shape(out[2], [])}
        for name, value in zip(synthetic.FACTOR_KEYS, out[3:]):
            result[name] = tf.ensure_shape(value, [])
        return result

    return indices, element


def _records_source(data: DataConfig, seed: int, num_pipelines: int, pipeline_id: int,
                    split: str = "train"):
    manifest = records.read_manifest(data.data_dir)
    # Checks every shard against the manifest once, here: a full CRC read for splits of up to
    # records.FULL_CHECK_BYTES, else record headers only (~10 ms per thousand videos). A
    # truncated or corrupt shard fails now with one line naming it, not mid-training.
    paths = records.shard_paths(data.data_dir, manifest, split,
                                full=True if data.verify_data == "full" else None)
    if len(paths) >= num_pipelines:
        serialized = tf.data.TFRecordDataset(paths[pipeline_id::num_pipelines])
    else:
        serialized = tf.data.TFRecordDataset(paths).shard(num_pipelines, pipeline_id)
    serialized = _stateless_shuffle(serialized, data.shuffle_buffer, seed)
    size = data.resolution

    def element(blob, example_seed):
        parsed = records.parse_example(blob)
        indices = _clip_indices(parsed["num_frames"], data.num_frames, data.max_stride, example_seed)
        frames = records.decode_frames(parsed, indices)
        if manifest.get("resolution") != size:
            frames = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(
                frames, [size, size], antialias=True)), 0, 255), tf.uint8)
        return {"video": tf.ensure_shape(frames, [data.num_frames, size, size, 3]),
                "label": tf.cast(parsed["label"], tf.int32),
                "identity": tf.cast(parsed["identity"], tf.int32)}

    return serialized, element


def _augment(video_uint8, data: DataConfig, example_seed):
    """uint8 clip -> float32 in [-1, 1], with the configured flip/crop (same for every frame)."""
    video = pixels.from_uint8(video_uint8)
    size = data.resolution
    if data.random_crop > 0:
        u = tf.random.stateless_uniform(
            [3], tf.random.experimental.stateless_fold_in(example_seed, _SALT_CROP))
        side = 1.0 - data.random_crop * u[0]
        y0, x0 = (1.0 - side) * u[1], (1.0 - side) * u[2]
        box = tf.stack([y0, x0, y0 + side, x0 + side])
        frames = tf.shape(video)[0]
        video = tf.image.crop_and_resize(video, tf.tile(box[None], [frames, 1]),
                                         tf.range(frames), [size, size])
    if data.random_flip:
        coin = tf.random.stateless_uniform(
            [], tf.random.experimental.stateless_fold_in(example_seed, _SALT_FLIP))
        video = tf.cond(coin < 0.5, lambda: tf.reverse(video, axis=[2]), lambda: video)
    return tf.clip_by_value(video, -1.0, 1.0)


#: model.TRAINING_DATA -> the dataset maker training uses (same arguments, order, resume)
TRAINING_DATA = {"clips": make_dataset, "triples": make_triples_dataset}
