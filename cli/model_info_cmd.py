"""`dvt model-info NAME`: parameters, multiply-adds and FLOPs of a named model."""

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
    """Parameters and forward multiply-adds (GMACs) and FLOPs of one clip, by module."""
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
    click.echo(f"forward per clip: {info['gmacs']:.2f} GMACs (multiply-adds) = "
               f"{info['gflops']:.2f} GFLOPs (2 per multiply-add); matmuls, convolutions and "
               "attention, the bilinear sampling not counted")
    click.echo(f"  {'module':<28} {'params (M)':>10} {'GMACs':>9}")
    for row in info["modules"]:
        click.echo(f"  {row['module']:<28} {row['params'] / 1e6:10.3f} {row['gmacs']:9.3f}")
    click.echo(f"  each of the {config['depth']} blocks:")
    for row in info["block_modules"]:
        click.echo(f"    {row['module']:<26} {row['params'] / 1e6:10.3f} {row['gmacs']:9.3f}")
