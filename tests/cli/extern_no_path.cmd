eval tests/extern/types.clause --input '{"request": {"user": "abc12345", "flag": true, "n": 42, "u": 7, "x": 2.5, "time": "2024-05-01T10:00:00Z", "wait": "15s"}}'
