compile tests/cli/import_cycle.clause --lib-path tests/cli/lib
