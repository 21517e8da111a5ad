"""Projections: pure folds over ledger entries (DESIGN.md section 6, STYLE rule 12)."""
