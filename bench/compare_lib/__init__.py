"""Helpers of bench/compare: environment set-up, contestants, protocol and report."""
