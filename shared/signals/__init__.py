"""Pure signal formulas used by the engines: no Redis, no models, no clocks."""
