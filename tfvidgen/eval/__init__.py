"""Evaluation: classifier.py (per-dataset evaluation classifier), metrics.py (metric maths),
flow.py (optical flow, motion quantification), protocol.py (the pinned evaluation protocol)."""
