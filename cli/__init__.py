"""The `dvt` command line: parse, call the libraries, print."""
