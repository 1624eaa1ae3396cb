disasm tests/cli/policy.clause
