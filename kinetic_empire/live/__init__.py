"""Live (paper) trading: the composition root, its config, journal, preflight, status view and reports."""
