eval tests/extern/host.clause --input '{}'
