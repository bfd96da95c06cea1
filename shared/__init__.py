"""Code every AegisMatrix service shares: configuration, message schemas, the Redis bus,
the exchange calendar, feature computation, signal formulas and the model registry."""
