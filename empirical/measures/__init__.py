"""What is measured on attribution maps and activations: similarity (with noise floors),
activation statistics."""
