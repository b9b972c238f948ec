"""NVIDIA's StyleGAN2 networks in Flax, the feature networks, and batched sampling."""
