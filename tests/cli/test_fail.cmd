test tests/cli/tests_fail.clause tests/cli/terms_v1.clause
