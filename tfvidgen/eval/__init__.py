"""Evaluation: classifier.py (per-dataset evaluation classifier), metrics.py (metric maths),
flow.py (flow metrics: end-point error, motion quantification), transfer.py (image-to-video
scores), protocol.py (the pinned evaluation protocol)."""
