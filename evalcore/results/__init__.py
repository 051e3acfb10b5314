"""What a run's stored results say: read once (`loader`), then the run's summary, its
per-run statistics, the verdict against the scorecard, run history and the nightly trends."""
