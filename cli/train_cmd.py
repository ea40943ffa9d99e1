"""`dvt train`, `dvt eval`, `dvt ablate`: thin wrappers around dvt_model.train / evaluate /
ablate. Training flags default to None so that only the ones given override a --config YAML
(or, with --resume, the run's own config)."""

from __future__ import annotations

import json
import os
from dataclasses import fields

import click

from cli.model_options import MODEL_KEYS, model_options
from dvt_model.config import CUES
from dvt_model.factory import list_models

TRAIN_OPTIONS = (
    click.option("--store", "store", multiple=True, help="Store made by `dvt prep` (repeat "
                 "for several)."),
    click.option("--labels", help="Training labels: `video_id,label` CSV, Kinetics CSV or "
                 "SSv2 JSON."),
    click.option("--val-labels", help="Validation labels, evaluated after every epoch."),
    click.option("--val-store", multiple=True, help="Validation store (default: --store)."),
    click.option("--model", type=click.Choice(list_models()), help="Named model."),
    click.option("--config", "config_path", type=click.Path(dir_okay=False),
                 help="YAML file of training options; flags override it."),
    click.option("--epochs", type=int), click.option("--batch-size", type=int),
    click.option("--lr", type=float), click.option("--weight-decay", type=float),
    click.option("--warmup-epochs", type=float), click.option("--frame-stride", type=int),
    click.option("--num-workers", type=int, help="DataLoader workers per process."),
    click.option("--seed", type=int),
    click.option("--device", type=click.Choice(("auto", "cpu", "cuda"))),
    click.option("--max-steps", type=int, help="Stop (and checkpoint) after this many steps."),
    click.option("--skip-missing", is_flag=True, default=None,
                 help="Drop videos without labels and labels without videos."),
    click.option("--flip/--no-flip", default=None,
                 help="Horizontal flips. Default: mirrored clips of left/right and clockwise/"
                 "counter-clockwise classes take their partner's label, and direction classes "
                 "without a partner are never mirrored; --flip mirrors those too, --no-flip "
                 "turns flips off."),
    click.option("--grad-checkpointing", is_flag=True, default=None,
                 help="Recompute blocks in backward: much less memory, about 1/3 more time."),
    click.option("-q", "--quiet", is_flag=True, default=None, help="No progress bar."),
)
THREADS_OPTION = click.option(
    "--threads", default=1, show_default=True, type=click.IntRange(min=1),
    help="Compute threads per process; processes (torchrun, DataLoader workers) are the "
    "parallelism.")
TRUST_OPTION = click.option(
    "--trust-checkpoint", is_flag=True, help="Read checkpoints that need Python's full "
    "unpickler (runs from older dvt versions); such a file can run code: only for files you "
    "trust.")


def train_options(command):
    for option in reversed(TRAIN_OPTIONS):
        command = option(command)
    return model_options(command)


def train_config_from(params: dict, *, base: dict | None = None):
    """TrainConfig from a base (a run's config or YAML) and the flags given."""
    from dvt_model.train_config import TrainConfig

    values = dict(base or {})
    if params.get("config_path"):
        values = TrainConfig.from_yaml(params["config_path"]).to_dict() | values
    model_options = dict(values.get("model_options") or {})
    if params.get("paper_faithful"):
        from dvt_model.config import PAPER_FAITHFUL

        model_options.update(PAPER_FAITHFUL)
    own_fields = {f.name for f in fields(TrainConfig)}  # cue, num_frames, img_size among them
    for key, value in params.items():
        if value is None or value == () or key in ("config_path", "paper_faithful"):
            continue
        if key in MODEL_KEYS and key not in own_fields:
            model_options[key] = value
        else:
            values[key] = list(value) if isinstance(value, tuple) else value
    values["model_options"] = model_options
    return TrainConfig.from_dict(values)


@click.command()
@train_options
@click.option("--out", help="Run directory (checkpoints, metrics, config).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False),
              help="Continue the run in this directory where it stopped.")
@TRUST_OPTION
@THREADS_OPTION
def train(resume_dir: str | None, trust_checkpoint: bool, threads: int, **params) -> None:
    """Train a model on cached cues (DDP when started by torchrun)."""
    from dvt_model.train import CHECKPOINT
    from dvt_model.train import train as run_training
    from dvt_prep.threads import set_compute_threads

    base = None
    if resume_dir:
        if not os.path.isfile(os.path.join(resume_dir, CHECKPOINT)):
            raise click.UsageError(f"{resume_dir}: no {CHECKPOINT} to resume from")
        base = _run_config(resume_dir)
        params["out"] = resume_dir
    config = train_config_from(params, base=base)  # train() reports bad options first
    set_compute_threads(threads, torch=True)
    metrics = run_training(config, resume=resume_dir is not None,
                           trust_checkpoint=trust_checkpoint)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun: one summary line, from rank 0
        return
    click.echo(f"run: {config.out}  " + "  ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))


def _run_config(run_dir: str) -> dict:
    """The training options a run was started with, from its `config.yaml` (plain YAML, so
    reading it runs nothing)."""
    import yaml

    path = os.path.join(run_dir, "config.yaml")
    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as error:
        raise click.UsageError(f"{path}: cannot read the run's config ({error})") from None
    if not isinstance(values, dict):
        raise click.UsageError(f"{path}: not a run's config (a mapping of option: value)")
    for key in ("model_config", "class_names"):  # recorded beside the options, not options
        values.pop(key, None)
    return values


@click.command("eval")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--store", multiple=True, help="Store(s) to evaluate on (default: the run's "
              "validation store).")
@click.option("--labels", help="Labels to evaluate (default: the run's --val-labels).")
@click.option("--num-clips", type=int, default=4, show_default=True)
@click.option("--num-crops", type=int, default=3, show_default=True)
@click.option("--batch-size", type=int)
@click.option("--num-workers", type=int)
@click.option("--device", type=click.Choice(("auto", "cpu", "cuda")), default="auto")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@TRUST_OPTION
@THREADS_OPTION
def eval_cmd(run_dir: str, store: tuple[str, ...], labels: str | None, num_clips: int,
             num_crops: int, batch_size: int | None, num_workers: int | None, device: str,
             as_json: bool, trust_checkpoint: bool, threads: int) -> None:
    """Evaluate a run on test views: top-1/top-5, per-class accuracy, confusion matrix."""
    from dvt_model.evaluate import evaluate_run
    from dvt_prep.threads import set_compute_threads

    set_compute_threads(threads, torch=True)

    result = evaluate_run(run_dir, store=list(store) or None, labels=labels,
                          num_clips=num_clips, num_crops=num_crops, batch_size=batch_size,
                          num_workers=num_workers, device=device,
                          trust_checkpoint=trust_checkpoint)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{run_dir}: top-1 {100 * result['top1']:.2f}%  top-5 {100 * result['top5']:.2f}%"
               f"  over {result['videos']} videos x {num_clips * num_crops} views")
    click.echo(f"wrote {os.path.join(run_dir, 'eval.json')} and "
               f"{os.path.join(run_dir, 'confusion.png')}")


@click.command()
@train_options
@click.option("--out", required=True, help="Folder of the runs and the reports.")
@click.option("--grid", "grid_specs", multiple=True, required=True,
              help=f"KEY=V1,V2,... (repeat for more axes), e.g. cue={','.join(CUES)}")
@click.option("--seeds", type=int, default=1, show_default=True, help="Seeds 0..N-1 per "
              "combination (error bars when > 1).")
@click.option("--num-clips", type=int, default=4, show_default=True)
@click.option("--num-crops", type=int, default=3, show_default=True)
@TRUST_OPTION
@THREADS_OPTION
def ablate(out: str, grid_specs: tuple[str, ...], seeds: int, num_clips: int, num_crops: int,
           trust_checkpoint: bool, threads: int, **params) -> None:
    """One run per grid combination (same data, seed and schedule), then ablation.md/.csv/.png.
    Finished runs are skipped on a rerun."""
    from dvt_model.ablate import parse_grid, run_ablation
    from dvt_prep.threads import set_compute_threads

    set_compute_threads(threads, torch=True)

    base = train_config_from({**params, "out": out})
    run_ablation(base, parse_grid(list(grid_specs)), seeds=list(range(seeds)), out_dir=out,
                 num_clips=num_clips, num_crops=num_crops,
                 on_run=lambda name, status: click.echo(f"{name}: {status}"),
                 trust_checkpoint=trust_checkpoint)
    with open(os.path.join(out, "ablation.md"), encoding="utf-8") as handle:
        click.echo(handle.read())
    click.echo(f"chart: {os.path.join(out, 'ablation.png')}")


@click.command()
@click.option("--out", default="demo_out", show_default=True, help="Working folder.")
@click.option("--quick", is_flag=True, help="A smaller, shorter version (about a minute).")
def demo(out: str, quick: bool) -> None:
    """Synthetic motion videos -> every cue -> the cue ablation of dvt_tiny (under 10 minutes)."""
    from dvt_model.demo import run_demo

    if quick:
        run_demo(out, train_per_class=4, val_per_class=2, epochs=1, seeds=(0,),
                 cues=("md_rgbr", "none"), echo=click.echo)
    else:
        run_demo(out, echo=click.echo)
