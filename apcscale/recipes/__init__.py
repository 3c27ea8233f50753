"""Runnable entry points: prepare, train, sweep, fit (python -m apcscale.recipes.<name>)."""
