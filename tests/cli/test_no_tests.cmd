test tests/cli/policy.clause
