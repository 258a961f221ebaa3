"""Building blocks shared by the models (one concept per file)."""
