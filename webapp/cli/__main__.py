"""``python -m webapp.cli``: the same as the ``nurture`` script."""

from webapp.cli import main

main(prog_name="nurture")
