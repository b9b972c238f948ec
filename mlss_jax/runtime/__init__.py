"""The training runtime: the host loop, data parallelism, run directories and checkpoints."""
