"""Evaluation: metric maths (metrics.py). The classifier, optical flow and the evaluate CLI are
not built yet."""
