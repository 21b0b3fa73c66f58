"""`python -m zenaton_cli`: the same as the `zenaton` command."""

from zenaton_cli.main import main

main()
