"""The experiments of seed A.1, I and J: top-down randomisation, faithfulness, activation statistics."""
