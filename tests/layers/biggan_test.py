"""BigGAN blocks: conditional BN with gain 1 + linear, projection head by hand (sum pooling),
spectrally normalised embedding, block shapes and the temporal shift inside G blocks."""

import numpy as np
import tensorflow as tf

from tfvidgen.layers import biggan
from tfvidgen.layers import spectral_norm as sn


def _unit_rank_one(rows, cols, seed):
    """outer(p, q) with unit p, q: spectral norm exactly 1, found by one power iteration."""
    rng = np.random.default_rng(seed)
    p, q = rng.normal(size=rows), rng.normal(size=cols)
    return np.outer(p / np.linalg.norm(p), q / np.linalg.norm(q)).astype(np.float32)


def test_conditional_batch_norm_gain_is_one_plus_linear():
    x = tf.random.normal([6, 2, 2, 3]) * 3.0 + 1.0
    c = tf.random.normal([6, 5])
    layer = biggan.ConditionalBatchNorm(3)
    layer(x, c)
    gain_w, bias_w = _unit_rank_one(5, 3, 0), _unit_rank_one(5, 3, 1)
    layer.gain.kernel.assign(gain_w)
    layer.gain.bias.assign([0.1, -0.2, 0.3])
    layer.bias.kernel.assign(bias_w)
    layer.bias.bias.assign([0.5, 0.0, -0.5])
    out = layer(x, c, training=True).numpy()
    xs = x.numpy()
    mean, var = xs.mean(axis=(0, 1, 2)), xs.var(axis=(0, 1, 2))
    normalized = (xs - mean) / np.sqrt(var + 1e-5)
    gain = c.numpy() @ gain_w + [0.1, -0.2, 0.3]
    bias = c.numpy() @ bias_w + [0.5, 0.0, -0.5]
    expected = normalized * (1.0 + gain[:, None, None, :]) + bias[:, None, None, :]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    assert layer.norm.synchronized and not layer.norm.center and not layer.norm.scale


def test_projection_head_is_linear_plus_embedding_inner_product_of_sum_pooled_features():
    head = biggan.ProjectionHead(4, num_classes=3)
    features = tf.random.normal([5, 3, 3, 4])
    labels = tf.constant([0, 2, 1, 2, 0])
    logits = head(features, labels, training=False).numpy()
    h = np.maximum(features.numpy(), 0).sum(axis=(1, 2))                    # ReLU, SUM pooling
    w = sn.spectral_normalize(head.linear.kernel, head.linear.sn_u, False).numpy()
    table = head.embed.normalized_table(False).numpy()
    expected = (h @ w)[:, 0] + head.linear.bias.numpy()[0] + np.sum(table[labels.numpy()] * h, 1)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-4)
    unconditional = biggan.ProjectionHead(4)
    assert unconditional.embed is None and unconditional(features).shape == (5,)


def test_embedding_table_is_spectrally_normalised():
    layer = biggan.SNEmbedding(6, 4)
    layer(tf.constant([0]))
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.normal(size=(6, 4)))
    v, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    layer.embeddings.assign(((u * [5.0, 2.5, 1.0, 0.5]) @ v.T).astype(np.float32))
    for _ in range(20):
        layer(tf.constant([1, 2]), training=True)            # power iterations advance
    table = layer.normalized_table(False).numpy()
    assert abs(np.linalg.svd(table, compute_uv=False)[0] - 1.0) < 1e-3
    rows = layer(tf.constant([3, 1])).numpy()
    np.testing.assert_allclose(rows, table[[3, 1]], rtol=1e-6)


def test_block_shapes_and_attention_starts_as_identity():
    c = tf.random.normal([8, 7])
    block = biggan.GeneratorBlock(6, 4, temporal_shift_fold_div=3)
    assert block(tf.random.normal([8, 4, 4, 6]), c, num_frames=4, training=True).shape == (
        8, 8, 8, 4)
    attention = biggan.SelfAttention(8)
    x = tf.random.normal([2, 4, 4, 8])
    np.testing.assert_allclose(attention(x).numpy(), x.numpy())           # sigma starts at 0
    d_first = biggan.DiscriminatorBlock(5, optimized=True)
    assert d_first(tf.random.normal([2, 8, 8, 3])).shape == (2, 4, 4, 5)
    d_last = biggan.DiscriminatorBlock(5, downsample=False, learnable_skip=False)
    assert d_last.skip is None and d_last(tf.random.normal([2, 4, 4, 5])).shape == (2, 4, 4, 5)


def test_generator_block_output_biases_only_when_asked():
    """conv1 never has a bias (CBN2 follows); conv2 and skip have one with output_bias (for a
    block whose output a temporal shift reads before the next BN)."""
    c, x = tf.random.normal([4, 3]), tf.random.normal([4, 2, 2, 6])
    for output_bias in (False, True):
        block = biggan.GeneratorBlock(6, 4, temporal_shift_fold_div=3, output_bias=output_bias)
        block(x, c, num_frames=2, training=True)
        assert block.conv1.bias is None
        assert (block.conv2.bias is not None) == output_bias == (block.skip.bias is not None)
        assert block.get_config()["output_bias"] == output_bias


def test_temporal_generator_block_mixes_neighbouring_frames_only_within_a_video():
    c = tf.zeros([6, 3])
    block = biggan.GeneratorBlock(6, 2, temporal_shift_fold_div=3)
    x = tf.random.normal([6, 2, 2, 6])                       # 2 videos x 3 frames
    base = block(x, c, num_frames=3, training=False).numpy()
    changed = x.numpy().copy()
    changed[4] += 1.0                                        # video 1, frame 1
    out = block(tf.constant(changed), c, num_frames=3, training=False).numpy()
    differs = [not np.allclose(base[i], out[i]) for i in range(6)]
    assert differs == [False, False, False, True, True, True]   # frames 0-2 of video 1 only
