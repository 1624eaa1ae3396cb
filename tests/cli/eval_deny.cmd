eval tests/cli/policy.clause --input '{"account": {"id": "a1"}, "request": {"purpose": "distillation", "tokens": 10}, "client": {"country": "US"}}'
