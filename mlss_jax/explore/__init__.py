"""Exploring the latent space: interpolation, mixing, editing, t-SNE, projection."""
