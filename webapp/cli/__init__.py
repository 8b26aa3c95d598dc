"""The ``nurture`` command: one entry point for marketers, operators and CI.

It lives in the web shell because it composes everything (web app, workers, services);
each command parses its options, builds ``Settings.from_env()`` and calls one service.
"""

from __future__ import annotations

import logging

import click

from webapp.cli import common
from webapp.cli.accounts import tokens_group, users_group
from webapp.cli.data import import_command
from webapp.cli.demo import demo_command
from webapp.cli.inbound import inbound_group
from webapp.cli.prospects import prospects_group
from webapp.cli.run import init_command, scheduler_command, up_command, worker_command
from webapp.cli.sequences import sequences_group, simulate_command
from webapp.logs import configure_logging

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nurture")
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
def main(verbose: bool) -> None:
    """Nurture: keep not-ready and lost prospects warm; hand them back to sales when they
    re-engage. Configuration comes from NURTURE_* environment variables (see README)."""
    settings = common.settings()
    configure_logging(logging.DEBUG if verbose else settings.log_level, settings.log_format)


main.add_command(init_command)
main.add_command(up_command)
main.add_command(worker_command)
main.add_command(scheduler_command)
main.add_command(sequences_group)
main.add_command(simulate_command)
main.add_command(import_command)
main.add_command(demo_command)
main.add_command(users_group)
main.add_command(tokens_group)
main.add_command(prospects_group)
main.add_command(inbound_group)
