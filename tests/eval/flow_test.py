"""Flow metrics: motion quantification, and the estimator re-exported from layers."""

import numpy as np
import pytest

from tfvidgen.eval import flow
from tfvidgen.layers import flow as flow_layers


def test_estimator_is_reexported_from_layers():
    # Existing callers of tfvidgen.eval.flow keep working after the move to layers.
    for name in ("to_gray", "warp", "horn_schunck"):
        assert getattr(flow, name) is getattr(flow_layers, name)


def test_end_point_error_ignores_the_border():
    truth = np.zeros((1, 8, 8, 2))
    estimate = truth.copy()
    estimate[:, 0] = 3.0
    assert flow.end_point_error(estimate, truth, border=1) == 0.0
    assert flow.end_point_error(estimate, truth) > 0


def test_motion_quantification_bins_and_magnitudes():
    t, h, w = 2, 4, 4
    field = np.zeros((t, h, w, 2))
    field[..., 0] = -2.0                  # everything moves left: atan2(-0, 2) = 0 -> R0
    q = flow.motion_quantification(field)
    assert q["counts"] == [t * h * w, 0, 0, 0]
    assert q["phi"] == [1.0, 0.0, 0.0, 0.0] and q["Phi"] == 1.0
    field[:, :2, :, 0] = 2.0              # top half moves right: opposite region R2
    field[:, :2, :, 0] *= 0.5             # at half the radius
    q = flow.motion_quantification(field, max_magnitude=2.0)
    assert q["counts"] == [16, 0, 16, 0]
    assert q["phi"][0] == 1.0 and q["phi"][2] == pytest.approx(0.5)
    assert q["Phi"] == pytest.approx(0.75)
    mask = np.zeros((h, w), bool)
    mask[:2] = True
    assert flow.motion_quantification(field, mask=mask, max_magnitude=2.0)["counts"] == [0, 0, 16, 0]
    assert flow.motion_quantification(np.zeros((1, 2, 2, 2)))["Phi"] == 0.0
