"""Batch normalisation with TensorFlow's fused kernel where it gives Keras' result.

Keras 3's BatchNormalization computes training-mode BN from elementwise ops in float32 (cast,
moments, normalise, cast back), and differentiates through each of them: per BN call about ten
passes over the activation tensor forward and backward. TensorFlow's FusedBatchNormV3 (oneDNN on
CPU) does the same maths in one pass each way, in the input's dtype with float32 statistics.
FusedBatchNorm is used for training-mode calls on one replica with oneDNN on; Keras' path
(synchronized moments) everywhere else: several replicas, masks, renorm, inference, and oneDNN
off, where TensorFlow's Eigen kernel rounds differently enough that a one-device update left
the two-replica (Keras) one by more than the contract test allows (measured on TwoStreamVAN's
D_V: 1.5e-4 against a 1.3e-4 bound on 62 of 6.3M weights).

A 5D input [B, T, H, W, C] is normalised as the 4D [B*T, H, W, C] (the same statistics: every
axis but the channels'): TensorFlow runs only the 4D NHWC form on oneDNN; its NDHWC form fell to
a generic kernel, 2.1-2.6x slower forward + backward (measured 2026-12-06, [16, 16, 64, 64, 64],
float32 and bfloat16, 2-core AMD EPYC).

Same variables (gamma, beta, moving_mean, moving_variance), so checkpoints are interchangeable
with keras.layers.BatchNormalization; the moving variance is updated with the biased batch
variance as Keras does (the fused kernel reports the unbiased one, n / (n - 1) times larger).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfvidgen import hardware

__all__ = ["BatchNorm"]

_FUSED_RANKS = (4, 5)


@keras.saving.register_keras_serializable(package="tfvidgen")
class BatchNorm(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization, on the fused kernel for one-replica training calls."""

    def _fused_applies(self, inputs, training, mask) -> bool:
        if not (training and self.trainable) or mask is not None or self.renorm:
            return False
        rank = len(inputs.shape)
        if rank not in _FUSED_RANKS or self.axis not in (-1, rank - 1):
            return False
        if not hardware.onednn_enabled():
            return False
        # synchronized moments across replicas need Keras' all-reduce
        return not (self.synchronized
                    and tf.distribute.get_strategy().num_replicas_in_sync > 1)

    def call(self, inputs, training=None, mask=None):
        if not self._fused_applies(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        x = tf.convert_to_tensor(inputs)
        if x.dtype not in (tf.float32, tf.bfloat16, tf.float16):
            x = tf.cast(x, tf.float32)
        shape = tf.shape(x)
        if len(x.shape) == 5:                       # [B, T, H, W, C] -> [B*T, H, W, C]
            x = tf.reshape(x, tf.concat([[-1], shape[2:]], 0))
        channels = x.shape[-1]
        # without gamma / beta (center or scale False) the kernel gets the identity's
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels])
        y, mean, unbiased = tf.compat.v1.nn.fused_batch_norm(
            x, gamma, beta,
            epsilon=self.epsilon, data_format="NHWC", is_training=True)
        y = tf.reshape(y, shape)
        count = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)
        variance = unbiased * (count - 1.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum
                                    + variance * (1.0 - self.momentum))
        return tf.cast(y, self.compute_dtype)
