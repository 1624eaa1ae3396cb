compile tests/cli/unknown_field.clause -o /dev/null
