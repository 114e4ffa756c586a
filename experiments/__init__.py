"""Composition roots: the calmloop command line, session protocols, replay, reports, benchmarks."""
