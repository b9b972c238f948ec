"""Image grids, GIFs and plots."""
