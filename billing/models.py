"""billing models."""
