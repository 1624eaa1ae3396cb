test tests/cli/net_cidr.clause
