"""One module per group of ``kubectl sync`` commands; each exposes ``run`` coroutines."""
