"""Multi-level latent space structuring: per-level mixtures, mappers, classifiers and critics."""
