"""Model definitions, the model registry and inference wrappers."""
