eval tests/cli/policy.clause --input '{"account": {"id": "a1"}, "request": {"tokens": 10, "tags": ["eval"]}, "client": {"country": "FR"}}'
