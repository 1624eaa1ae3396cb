eval tests/cli/policy.clause --frobnicate
