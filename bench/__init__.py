"""Benchmarks (``make bench``): figures printed as ratios to a raw baseline measured in the same run."""
