"""`train(config)`: the training loop of `dvt train`, readable in one sitting.

AdamW with linear warm-up and cosine decay (per optimiser step), gradient clipping, label
smoothing, bf16 autocast on CUDA; DDP when started by torchrun (gloo on the CPU, NCCL on CUDA),
with the dataset's rank sharding. A checkpoint after every epoch (`last.pt`), the best by
validation top-1 (`best.pt`), and at `max_steps`; `resume` continues exactly where `last.pt`
stopped: model, optimiser, step (so the schedule), the dataset's epoch and position, RNG.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, fields

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from dvt_model.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from dvt_model.config import ModelConfig
from dvt_model.data import Labels, VideoClipDataset, collate, read_labels
from dvt_model.metrics_log import MetricsLog
from dvt_model.model import VideoTransformer
from dvt_model.predict import accuracy, predict, to_device
from dvt_model.train_config import TrainConfig
from dvt_prep.errors import InputError
from dvt_prep.threads import single_thread_worker

CHECKPOINT = "last.pt"
BEST = "best.pt"


def setup_distributed(device_name: str) -> tuple[torch.device, int, int]:
    """Join the process group when started by torchrun; returns (device, rank, world size)."""
    use_cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise InputError("train: --device cuda asked for, but no CUDA device is visible")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank), rank, world_size
    return torch.device("cpu"), rank, world_size


def lr_at(step: int, config: TrainConfig, steps_per_epoch: int) -> float:
    """Linear warm-up, then cosine decay to `min_lr` at the last step."""
    warmup = config.warmup_epochs * steps_per_epoch
    total = config.epochs * steps_per_epoch
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, norms and position embeddings (1-D or embeddings)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if param.ndim <= 1 or name.endswith("_embed") else decay).append(param)
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)


def build_datasets(config: TrainConfig, model: VideoTransformer, labels: Labels | None = None):
    """The training dataset (and the validation one when `val_labels` is set); `labels`: the
    training labels when the caller has read them already."""
    labels = labels or read_labels(config.labels)
    common = dict(cues=model.inputs, num_frames=model.config.num_frames,
                  frame_stride=config.frame_stride, img_size=model.config.img_size,
                  seed=config.seed, on_missing="skip" if config.skip_missing else "error")
    train_set = VideoClipDataset(config.store, labels=labels, mode="train",
                                 batch_size=config.batch_size, scale=config.crop_scale,
                                 flip=config.flip, **common)
    val_set = None
    if config.val_labels:
        val_labels = read_labels(config.val_labels, class_names=labels.class_names)
        val_set = VideoClipDataset(config.val_store or config.store, labels=val_labels,
                                   mode="val", **common)
    return train_set, val_set


def training_loss(model: torch.nn.Module, batch: dict, config: TrainConfig, amp: bool
                  ) -> torch.Tensor:
    """Label-smoothed cross-entropy of one batch (bf16 autocast on CUDA when `amp`)."""
    device_type = batch["label"].device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp):
        logits = model(batch)
    return F.cross_entropy(logits.float(), batch["label"], label_smoothing=config.label_smoothing)


@dataclass
class RunState:
    """Where a run stands; saved in every checkpoint, restored on resume."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    best_top1: float = -1.0


def save_run(path: str, *, model: VideoTransformer, optimizer: torch.optim.Optimizer,
             state: RunState, config: TrainConfig, labels: Labels) -> None:
    """A checkpoint of everything `train(resume=True)` needs to continue exactly."""
    save_checkpoint(path, {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), **asdict(state),
        "config": config.to_dict(),
        "model_config": model.config.to_dict(), "class_names": list(labels.class_names),
        "rng": rng_state()})


def train(config: TrainConfig, *, resume: bool = False, trust_checkpoint: bool = False) -> dict:
    """Train (or resume) a run in `config.out`. Returns the last epoch's metrics.
    trust_checkpoint: read a `last.pt` that needs the full unpickler (see dvt_model.checkpoint)."""
    config.validate()
    torch.set_flush_denormal(True)  # denormal floats slow CPU training several-fold at random
    device, rank, world_size = setup_distributed(config.device)
    checkpoint = _checkpoint_to_resume(config, trust_checkpoint) if resume else None
    class_names = tuple(checkpoint["class_names"]) if checkpoint else None
    labels = read_labels(config.labels, class_names=class_names)
    torch.manual_seed(config.seed)
    model = VideoTransformer(ModelConfig.from_saved(checkpoint["model_config"]) if checkpoint
                             else config.model_config(num_classes=labels.num_classes))
    model.set_grad_checkpointing(config.grad_checkpointing)
    train_set, val_set = build_datasets(config, model, labels)
    flips = train_set.flip_map.summary()
    if rank == 0 and flips and config.flip is None:
        print(flips, flush=True)
    steps_per_epoch = len(train_set) // config.batch_size
    if steps_per_epoch == 0:
        raise InputError(f"train: {len(train_set)} clips per rank is fewer than one batch of "
                         f"{config.batch_size}; lower --batch-size")
    optimizer = build_optimizer(model, config)
    state = RunState()
    if checkpoint:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        state = RunState(**{f.name: checkpoint[f.name] for f in fields(RunState)})
        set_rng_state(checkpoint["rng"])
        train_set.load_state_dict({"epoch": state.epoch, "seed": config.seed,
                                   "samples_seen": state.step_in_epoch * config.batch_size})
    model.to(device)
    ddp = DistributedDataParallel(model) if world_size > 1 else None
    amp = config.amp and device.type == "cuda"

    def save(name: str) -> None:
        if rank == 0:
            save_run(os.path.join(config.out, name), model=model, optimizer=optimizer,
                     state=state, config=config, labels=labels)

    # Workers are started once, while this process is small (forking a process that holds a
    # step's freed activations copies more than it should); they see each epoch's permutation
    # and resume offset through the dataset's shared memory.
    loader = DataLoader(train_set, batch_size=config.batch_size, collate_fn=collate,
                        num_workers=config.num_workers, drop_last=True,
                        persistent_workers=config.num_workers > 0,
                        worker_init_fn=single_thread_worker)
    if rank == 0:
        os.makedirs(config.out, exist_ok=True)
    log = MetricsLog(config.out, enabled=rank == 0,
                     truncate_after_step=state.step if resume else None)
    progress, last_metrics = None, {}
    try:
        if rank == 0:
            log.write_config(config.to_dict(), model.config.to_dict(),
                             list(labels.class_names))
        progress = _progress(config, rank, steps_per_epoch, state.step)
        while state.epoch < config.epochs:
            train_set.set_epoch(state.epoch)  # keeps a resumed run's offset in its epoch
            epoch_loss, epoch_steps = 0.0, 0
            ready = time.perf_counter()
            for batch in loader:
                arrived = time.perf_counter()
                lr = lr_at(state.step, config, steps_per_epoch)
                loss_value, grad_norm = _optimizer_step(ddp or model, optimizer,
                                                        to_device(batch, device), lr, config,
                                                        amp)
                state.step, state.step_in_epoch = state.step + 1, state.step_in_epoch + 1
                done = time.perf_counter()
                epoch_loss, epoch_steps = epoch_loss + loss_value, epoch_steps + 1
                clips_per_s = config.batch_size * world_size / (done - ready)
                log.step(epoch=state.epoch, step=state.step, loss=loss_value, lr=lr,
                         grad_norm=grad_norm, clips_per_s=clips_per_s,
                         data_wait=(arrived - ready) / (done - ready))
                if progress is not None:
                    progress.update(1)
                    progress.set_postfix(epoch=state.epoch, loss=f"{loss_value:.3f}",
                                         clips_s=f"{clips_per_s:.1f}")
                ready = done
                if config.max_steps is not None and state.step >= config.max_steps:
                    save(CHECKPOINT)
                    return {"step": state.step, "loss": loss_value}
                if config.save_every_steps and state.step % config.save_every_steps == 0:
                    save(CHECKPOINT)
            state.epoch, state.step_in_epoch = state.epoch + 1, 0
            last_metrics = {"epoch": state.epoch, "step": state.step,
                            "train_loss": epoch_loss / max(epoch_steps, 1)}
            if val_set is not None:
                last_metrics.update(_validate(model, val_set, labels, config, device, amp))
            log.epoch(**last_metrics)
            improved = last_metrics.get("val_top1", -1.0) > state.best_top1
            state.best_top1 = max(state.best_top1, last_metrics.get("val_top1", -1.0))
            save(CHECKPOINT)
            if improved or val_set is None:
                save(BEST)
    finally:
        if progress is not None:
            progress.close()
        log.close()
    return last_metrics


def _checkpoint_to_resume(config: TrainConfig, trust_checkpoint: bool) -> dict:
    path = os.path.join(config.out, CHECKPOINT)
    if not os.path.isfile(path):
        raise InputError(f"{config.out}: nothing to resume (no {CHECKPOINT}); start it "
                         "without --resume")
    return load_checkpoint(path, trust=trust_checkpoint)


def _optimizer_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict,
                    lr: float, config: TrainConfig, amp: bool) -> tuple[float, float]:
    """One step at learning rate `lr`; returns (loss, gradient norm before clipping)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss = training_loss(model, batch, config, amp)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
    optimizer.step()
    return loss.item(), float(grad_norm)


def _validate(model: VideoTransformer, val_set: VideoClipDataset, labels: Labels,
              config: TrainConfig, device: torch.device, amp: bool) -> dict:
    result = predict(model, val_set, batch_size=config.batch_size,
                     num_workers=config.num_workers, device=device, amp=amp)
    scores = accuracy(result["probs"], result["labels"], labels.num_classes)
    return {"val_loss": result["loss"], "val_top1": scores["top1"], "val_top5": scores["top5"]}


def _progress(config: TrainConfig, rank: int, steps_per_epoch: int, step: int):
    if config.quiet or rank != 0:
        return None
    from tqdm import tqdm
    return tqdm(total=config.epochs * steps_per_epoch, initial=step, unit="step",
                dynamic_ncols=True, leave=True)


def load_run(run_dir: str, name: str = BEST, *, trust_checkpoint: bool = False
             ) -> tuple[VideoTransformer, dict]:
    """The model of a run (its best checkpoint, else the last) and the checkpoint dict.
    trust_checkpoint: read one that needs the full unpickler (see dvt_model.checkpoint)."""
    for candidate in (name, CHECKPOINT):
        path = os.path.join(run_dir, candidate)
        if os.path.isfile(path):
            checkpoint = load_checkpoint(path, trust=trust_checkpoint)
            model = VideoTransformer(ModelConfig.from_saved(checkpoint["model_config"]))
            model.load_state_dict(checkpoint["model"])
            return model, checkpoint
    raise InputError(f"{run_dir}: no checkpoint ({name} or {CHECKPOINT}); train it with "
                     "`dvt train --out` first")
