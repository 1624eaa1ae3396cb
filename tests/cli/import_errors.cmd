compile tests/cli/import_errors.clause --lib-path tests/cli/lib
