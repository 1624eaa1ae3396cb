test tests/cli/import_layered.clause --lib-path tests/cli/lib
