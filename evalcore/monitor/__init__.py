"""Nightly monitoring: drift statistics against a stored baseline (`drift`), the
baselines owners accept (`baseline`), and the nightly monitor's steps (`steps`)."""
