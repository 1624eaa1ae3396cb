compile tests/cli/syntax_error.clause -o /dev/null
