"""Sinks: where scored results and dead letters leave the sidecar."""
