"""Operator-layer fixtures: `crds`, `start_operator` and `operator` live in tests/conftest.py,
shared with tests/cli."""
