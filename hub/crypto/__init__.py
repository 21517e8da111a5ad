"""hub/crypto package."""
