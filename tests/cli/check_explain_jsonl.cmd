check tests/cli/terms_v1.clause --traffic tests/cli/traffic_mismatch.jsonl --format jsonl --explain
