diff tests/cli/terms_v1.clause tests/cli/policy.clause --traffic tests/cli/traffic_invalid.jsonl
