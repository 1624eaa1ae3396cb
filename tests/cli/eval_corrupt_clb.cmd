eval tests/cli/corrupt.clb --input '{}'
