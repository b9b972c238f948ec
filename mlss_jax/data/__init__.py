"""Real images for evaluation: tfds names or image folders."""
