"""`dvt`: one entry point, click commands, errors as one line (a traceback only with --debug)."""

from __future__ import annotations

import os
import sys

import click

from dvt_prep import __version__
from dvt_prep.errors import DvtError

# What a shell reports for a tool stopped by a closed pipe (128 + SIGPIPE), as `yes | head` has
CLOSED_PIPE_EXIT = 141


class DvtGroup(click.Group):
    """Turns DvtError (and any crash, unless --debug) into one line on stderr and exit code 1;
    a reader that closed the pipe (`dvt inspect STORE | head -2`) stops it quietly."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # The rest of the output goes nowhere, so that the flush at exit fails no more.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(CLOSED_PIPE_EXIT)
        except DvtError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(f"error: {type(exc).__name__}: {exc} (rerun with --debug for the "
                       "traceback)", err=True)
            sys.exit(2)


@click.group(cls=DvtGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dvt")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def main(debug: bool) -> None:
    """dvt: motion cues from videos into zarr stores, and the Deformable Video Transformer."""


def _register() -> None:
    from cli.bench_cmd import bench
    from cli.inspect_cmd import inspect
    from cli.model_info_cmd import model_info_cmd
    from cli.prep_cmd import prep
    from cli.train_cmd import ablate, demo, eval_cmd, train
    from cli.viz_cmd import viz

    main.add_command(prep)
    main.add_command(inspect)
    main.add_command(bench)
    main.add_command(model_info_cmd)
    for command in (viz, train, eval_cmd, ablate, demo):
        main.add_command(command)


_register()

if __name__ == "__main__":
    main()
