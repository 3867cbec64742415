"""Training, evaluation and reproduction of the paper's experiments."""
