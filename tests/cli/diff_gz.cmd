diff tests/cli/terms_v1.clause tests/cli/terms_v2.clause --traffic tests/cli/traffic_x6.jsonl.gz
