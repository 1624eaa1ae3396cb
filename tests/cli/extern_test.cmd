test tests/extern/types.clause --extern-path "$CLAUSE_BUILDDIR/tests/.libs"
