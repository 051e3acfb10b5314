"""The release gate: run the blocking set, judge it against the scorecard, publish the
verdict (`steps`), and announce releases that trigger it (`announce`)."""
