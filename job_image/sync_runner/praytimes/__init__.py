"""Prayer times: the PrayTimes algorithm (calculator) and its reference data (reference)."""
