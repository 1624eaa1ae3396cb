test tests/cli/std_http.clause
