"""support models."""
