eval tests/cli/policy.clause --input '{"account": {"id": "a1"}, "request": {"tokens": 200000}, "client": {"country": "FR"}}'
