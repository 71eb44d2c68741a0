"""guest models."""
