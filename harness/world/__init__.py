"""The micro world: typed scenes with ground truth, a deterministic renderer, a noisy generator, texts."""
