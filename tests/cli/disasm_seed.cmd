disasm examples/seed/terms.clause
