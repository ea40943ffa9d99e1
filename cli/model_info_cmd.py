"""`dvt model-info NAME`: parameters and FLOPs of a named model."""

from __future__ import annotations

import json

import click

from cli.model_options import model_options, model_overrides
from dvt_model.factory import list_models


@click.command("model-info")
@click.argument("name", type=click.Choice(list_models()))
@click.option("--num-classes", type=int, default=400, show_default=True)
@model_options
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def model_info_cmd(name: str, num_classes: int, as_json: bool, **params) -> None:
    """Parameters (by module) and forward GFLOPs of one clip for a named model."""
    from dvt_model.factory import create_model
    from dvt_model.info import model_info

    info = model_info(create_model(name, num_classes=num_classes, **model_overrides(params)))
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    config = info["config"]
    click.echo(f"{name}: {config['attention']} attention, cue {config['cue']}, "
               f"{config['num_frames']} frames at {config['img_size']}px, "
               f"width {config['embed_dim']}, depth {config['depth']}, {config['num_heads']} heads")
    click.echo(f"inputs: {', '.join(info['inputs'])}")
    click.echo(f"parameters: {info['params'] / 1e6:.2f} M")
    for module, count in info["params_by_module"].items():
        click.echo(f"  {module:<24} {count / 1e6:9.3f} M")
    click.echo(f"forward: {info['gflops']:.2f} GFLOPs per clip (matmuls, convolutions and "
               "attention; bilinear sampling not counted)")
