"""The `longlens` command line: thin commands over the library."""
