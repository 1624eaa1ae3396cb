eval tests/extern/escape.clause --extern-path "$CLAUSE_BUILDDIR/tests" --input '{}'
