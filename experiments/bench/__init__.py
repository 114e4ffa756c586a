"""Benchmarks of calmloop's estimators against recorded data and peer methods."""
