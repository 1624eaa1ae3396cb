eval tests/cli/policy.clause --input '{"account": '
