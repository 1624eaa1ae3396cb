check tests/cli/terms_v1.clause --traffic tests/cli/traffic.jsonl --format jsonl --jobs 3
