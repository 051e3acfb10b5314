"""Cases from the formats teams already keep: promptfoo configs, OpenAI evals JSONL,
Inspect datasets and spreadsheets, converted into the suite's own case files."""
