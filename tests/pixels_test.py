"""In-graph pixel conversion: the same mapping as the host-side viz.to_uint8, and its inverse."""

import numpy as np

from tfvidgen import pixels, viz


def test_to_uint8_matches_viz_and_from_uint8_inverts_it():
    values = np.concatenate([np.linspace(-1.5, 1.5, 1001), [-1.0, 0.0, 1.0, 1 / 255]])
    values = values.astype(np.float32)
    in_graph = pixels.to_uint8(values).numpy()
    np.testing.assert_array_equal(in_graph, viz.to_uint8(values))
    assert in_graph.dtype == np.uint8 and in_graph.min() == 0 and in_graph.max() == 255
    levels = np.arange(256, dtype=np.uint8)
    back = pixels.from_uint8(levels).numpy()
    assert back[0] == -1.0 and back[-1] == 1.0
    np.testing.assert_array_equal(pixels.to_uint8(back).numpy(), levels)
