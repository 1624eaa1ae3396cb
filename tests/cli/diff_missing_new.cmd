diff tests/cli/terms_v1.clause --traffic tests/cli/traffic.jsonl
