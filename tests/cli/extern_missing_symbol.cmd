diff tests/extern/nosym.clause tests/extern/types.clause --extern-path "$CLAUSE_BUILDDIR/tests/.libs" --traffic -
