check tests/cli/syntax_error.clause --traffic tests/cli/traffic.jsonl
