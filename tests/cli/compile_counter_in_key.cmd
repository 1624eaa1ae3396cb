compile tests/cli/counter_in_key.clause -o /dev/null
