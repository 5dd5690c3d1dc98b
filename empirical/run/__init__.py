"""Running the experiments: data, profiles, results (tables, manifests, chunks) and the runner."""
