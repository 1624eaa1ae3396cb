compile tests/cli/import_missing.clause --lib-path tests/cli/lib 2>&1 | sed -e 's#in: tests/cli/lib:.*#in: tests/cli/lib:(the stdlib folders)#'
