check tests/cli/counters.clause --traffic tests/cli/counters.jsonl --format jsonl
