eval tests/cli/policy.clause --input - < tests/cli/embargoed_request.json
