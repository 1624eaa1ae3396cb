check tests/extern/counter.clause --extern-path "$CLAUSE_BUILDDIR/tests/.libs" --traffic tests/extern/counter.jsonl --format jsonl
