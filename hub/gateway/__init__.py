"""hub/gateway package."""
