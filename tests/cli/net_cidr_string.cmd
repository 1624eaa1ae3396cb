compile tests/cli/net_cidr_string.clause
