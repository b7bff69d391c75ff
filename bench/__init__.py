"""`python -m bench`: benchmarks of the engine and the simulator (targets beside each figure)."""
