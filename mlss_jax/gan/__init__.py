"""The compact data-parallel StyleGAN2 trainer and its losses."""
