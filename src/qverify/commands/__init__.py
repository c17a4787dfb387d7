"""One module per CLI command; each has add_parser(sub) and run(args) -> exit status."""
