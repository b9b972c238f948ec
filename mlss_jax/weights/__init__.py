"""Reading and writing weights: NVIDIA's pickles (safely), the TF exporter, checkpoints."""
