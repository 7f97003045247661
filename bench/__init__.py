"""Benchmarks: each script runs the baseline and the new path side by side and writes bench/results/."""
