"""``python -m netboot.cli``: the console script without an installed entry point (the lab runs it so)."""

from netboot.cli import main

main()
