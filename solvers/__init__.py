"""ctrlgym solvers (exact and frozen-state dynamic programming arrive with the fast-slow issue)."""
