check tests/cli/terms_v1.clause --traffic - --format jsonl < tests/cli/traffic.jsonl
