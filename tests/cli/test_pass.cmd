test tests/cli/terms_v1.clause
