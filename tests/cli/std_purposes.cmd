test tests/cli/std_purposes.clause
