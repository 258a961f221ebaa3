"""G3AN's spatio-temporal fusion of appearance, motion and video features."""

from __future__ import annotations

import tensorflow as tf

__all__ = ["spatio_temporal_fusion"]


def spatio_temporal_fusion(f_spatial, f_temporal, f_video):
    """Fuses the three streams of a G3 module.

    Args:
      f_spatial: [B, H, W, Cs] appearance features (shared by all frames), or None (no G_S).
      f_temporal: [B, T, C] motion features (shared by all positions), or None (no G_T).
      f_video: [B, T, H, W, C] video-stream features F_V'.

    Returns:
      [B, T, H, W, Cs + C]: concat(replicate_T(F_S), F_V' + replicate_HW(F_T)), spatial first.
    """
    fused = f_video
    if f_temporal is not None:
        fused = fused + f_temporal[:, :, None, None, :]               # replicate over H, W
    if f_spatial is not None:
        shape = tf.concat([tf.shape(f_video)[:4], tf.shape(f_spatial)[-1:]], axis=0)
        replicated = tf.broadcast_to(f_spatial[:, None], shape)       # replicate over T
        fused = tf.concat([replicated, fused], axis=-1)
    return fused
