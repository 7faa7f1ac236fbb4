"""Sources: where raw trace records enter the sidecar."""
