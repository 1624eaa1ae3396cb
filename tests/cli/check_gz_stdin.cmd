check tests/cli/terms_v1.clause --traffic - --format jsonl --fail-on suspend < tests/cli/traffic_small.jsonl.gz
