compile tests/cli/import_not_module.clause --lib-path tests/cli/lib
