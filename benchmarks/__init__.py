"""Benchmarks of the platform's stages; see benchmarks/README.md."""
