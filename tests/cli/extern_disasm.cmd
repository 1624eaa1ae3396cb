disasm tests/extern/types.clause
