eval tests/cli/counters.clause --input '{}' --store mongodb://localhost
