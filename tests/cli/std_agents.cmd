test tests/cli/std_agents.clause
