"""The benchmark: Rollcall end to end, measured against a raw baseline in the same run."""
