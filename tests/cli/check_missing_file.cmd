check tests/cli/terms_v1.clause --traffic tests/cli/no-such-traffic.jsonl
