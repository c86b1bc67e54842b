"""Configuration: load a source, validate it completely, resolve it into a RuntimeConfig."""
