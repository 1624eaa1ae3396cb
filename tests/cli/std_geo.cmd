test tests/cli/std_geo.clause
