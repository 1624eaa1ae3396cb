test tests/cli/syntax_error.clause
