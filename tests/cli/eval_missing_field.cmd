eval tests/cli/policy.clause --input '{"account": {"id": "a1"}, "client": {"country": "FR"}}'
