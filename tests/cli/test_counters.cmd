test tests/cli/counters.clause
