check tests/extern/types.clause --extern-path /nonexistent:tests/extern --traffic -
