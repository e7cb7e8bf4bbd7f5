"""The run folder: every path in it, and the writers that fill it."""
