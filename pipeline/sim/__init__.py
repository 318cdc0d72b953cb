"""The offline simulator of RunComfy's queue API (work in progress)."""
