"""Admission: the pure plan of who starts next, the grants it assumed, and the admitter
that runs passes."""
