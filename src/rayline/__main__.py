"""`python -m rayline`: the same as the `rayline` command."""

from rayline.cli import app

app(prog_name="rayline")
