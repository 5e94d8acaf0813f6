"""Entry scripts, one per `prift` subcommand: thin and linear, each exposing `main(argv) -> int`."""
