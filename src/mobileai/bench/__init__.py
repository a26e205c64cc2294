"""Benchmarks and reference adapters (optional dependencies are imported lazily)."""
