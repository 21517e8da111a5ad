"""hub/ledger package."""
