check tests/cli/counters.clause --traffic tests/cli/counters.jsonl --format jsonl --store 'memory?max_keys=2'
