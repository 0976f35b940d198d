"""The training loop: AdamW with transformers' linear warm-up and decay, bf16 autocast where it
pays, gradient clipping, checkpoints every ``save_every`` steps and a resumable state."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from qa.training.config import RunOptions, TrainConfig
from qa.training.export import save_checkpoint
from qa.training.features import FeatureBuilder, Feature, collate, make_batches


@dataclass(frozen=True)
class SchedulePlan:
    """The learning-rate schedule of a run, as ``reader.json`` and the checkpoint record it.

    Linear warm-up over ``warmup_steps``, then linear decay to 0 at ``planned_total``
    (``transformers.get_linear_schedule_with_warmup``). A run shortened on resume (a
    ``--max-steps`` below the planned total) decays linearly from its factor at
    ``anchor_step`` to 0 at the new ``total`` instead.

    Args:
        warmup_steps: steps of linear warm-up.
        planned_total: the total the run started with.
        total: the last step.
        anchor_step: step where a shortened schedule takes over (None: not shortened).
    """

    warmup_steps: int
    planned_total: int
    total: int
    anchor_step: int | None = None


def make_scheduler(optimizer, plan: SchedulePlan, step: int = 0):
    """The ``LambdaLR`` of ``plan``, positioned so that the optimiser's learning rate is the one for
    step ``step`` (0-based; the scheduler steps once after each optimiser step).

    Args:
        optimizer: the optimiser; its groups' ``lr`` (or ``initial_lr``, once set) is the peak rate.
        plan: the schedule.
        step: steps already taken (a resumed run's).

    Returns:
        The scheduler.
    """
    from torch.optim.lr_scheduler import LambdaLR
    from transformers import get_linear_schedule_with_warmup

    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    linear = get_linear_schedule_with_warmup(optimizer, plan.warmup_steps, plan.planned_total, last_epoch=step - 1)
    if plan.anchor_step is None:
        return linear
    planned = linear.lr_lambdas[0]
    anchor, total = plan.anchor_step, plan.total
    at_anchor = planned(anchor)

    def shortened(s: int) -> float:
        if s < anchor:
            return planned(s)
        return at_anchor * max(0.0, (total - s) / max(1, total - anchor))

    return LambdaLR(optimizer, shortened, last_epoch=step - 1)


def resumed_plan(state: dict, warmup: float, total_steps: int) -> SchedulePlan:
    """The schedule of a run resumed from a checkpoint's ``state.json``: the planned one, shortened
    from the checkpoint's step when ``total_steps`` is now below the planned total.

    Raises:
        ValueError: ``total_steps`` is below the checkpoint's step.
    """
    step = state["step"]
    planned = state.get("planned_total", state.get("total_steps", total_steps))
    plan = SchedulePlan(int(warmup * planned), planned, total_steps, state.get("anchor_step"))
    if state.get("total_steps") != total_steps:
        if total_steps < step:
            raise ValueError(f"--max-steps {total_steps} is below the checkpoint's step {step}; "
                             "raise --max-steps or start again without --resume")
        plan = SchedulePlan(plan.warmup_steps, planned, total_steps, step)
        print(f"schedule shortened: planned {planned} steps, now decaying from step {step} to 0 at {total_steps}",
              flush=True)
    return plan


def make_optimizer(model, cfg: TrainConfig):
    """AdamW at ``cfg.lr``, without weight decay on biases and LayerNorm weights."""
    import torch

    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(x in n for x in no_decay)],
         "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(x in n for x in no_decay)], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr)


@dataclass(frozen=True)
class LoopState:
    """Where a run stands: steps taken, minutes trained (over every resumed part) and its schedule."""

    step: int
    train_seconds: float
    plan: SchedulePlan

    def record(self) -> dict:
        """The checkpoint's ``state.json``."""
        return {**asdict(self.plan), "step": self.step, "total_steps": self.plan.total, "train_seconds": self.train_seconds}


def resume(work: Path, model, optimizer, device, cfg: TrainConfig, total_steps: int) -> LoopState | None:
    """Load ``work/checkpoint`` into ``model`` and ``optimizer``; None (and a message) when there is none."""
    import torch
    from safetensors.torch import load_file

    ck = work / "checkpoint"
    if not (ck / "state.json").is_file():
        print(f"no checkpoint in {ck}; starting from scratch", flush=True)
        return None
    state = json.loads((ck / "state.json").read_text())
    model.load_state_dict(load_file(str(ck / "model.safetensors"), device=str(device)))
    saved = torch.load(ck / "optim.pt", weights_only=True, map_location=device)
    optimizer.load_state_dict(saved["optimizer"])
    torch.set_rng_state(saved["rng"].cpu())
    done = LoopState(state["step"], state.get("train_seconds", 0.0), resumed_plan(state, cfg.warmup, total_steps))
    print(f"resumed at step {done.step} ({done.train_seconds / 60:.1f} min trained)", flush=True)
    return done


def span_distillation(start_logits, end_logits, teacher_start, teacher_end, positions):
    """Mean over windows of KL(teacher || student) of the start and of the end distributions
    (their mean), each taken over the positions in ``positions`` only. Over the context's tokens
    ([CLS] and the question left out) the loss holds where the answer lies and not whether there
    is one; with [CLS] it holds how sure the reader is too.

    Args:
        start_logits, end_logits: the trained model's logits (windows x tokens).
        teacher_start, teacher_end: the starting model's logits for the same windows.
        positions: bool (windows x tokens), True where the distributions are taken; windows
            without any are left out of the mean.

    Returns:
        A scalar tensor (fp32).
    """
    import torch.nn.functional as F

    windows = positions.any(-1)

    def kl(student, teacher):
        student = student.float().masked_fill(~positions, -1e9)
        teacher = teacher.float().masked_fill(~positions, -1e9)
        log_p_teacher = F.log_softmax(teacher, dim=-1)
        log_p_student = F.log_softmax(student, dim=-1)
        terms = log_p_teacher.exp() * (log_p_teacher - log_p_student)
        return terms.masked_fill(~positions, 0.0).sum(-1)[windows].sum() / windows.sum().clamp(min=1)

    return (kl(start_logits, teacher_start) + kl(end_logits, teacher_end)) / 2


def held_loss(cfg: TrainConfig, out, held, token_type_ids, attention_mask, start_positions):
    """The distillation terms of one batch: ``cfg.distill`` times ``span_distillation`` over the
    context of every window, plus ``cfg.distill_confidence`` times it over [CLS] and the context
    of the windows labelled with an answer. ``out`` and ``held`` are the trained and the starting
    model's outputs for the batch."""
    context = (token_type_ids == 1) & (attention_mask == 1)
    loss = 0.0
    if cfg.distill > 0:
        loss = loss + cfg.distill * span_distillation(
            out.start_logits, out.end_logits, held.start_logits, held.end_logits, context)
    if cfg.distill_confidence > 0:
        with_cls = context.clone()
        with_cls[:, 0] = True  # [CLS]: the no-answer position
        answered = with_cls & (start_positions > 0)[:, None]
        loss = loss + cfg.distill_confidence * span_distillation(
            out.start_logits, out.end_logits, held.start_logits, held.end_logits, answered)
    return loss


def train_loop(model, optimizer, builder: FeatureBuilder, first_epoch: list[Feature], tokenizer, cfg: TrainConfig,
               opts: RunOptions, device, use_bf16: bool, start: LoopState, teacher=None) -> LoopState:
    """Train from ``start`` to ``start.plan.total`` steps (or ``opts.stop_at``), checkpointing into
    ``opts.work`` every ``opts.save_every`` steps and once at the end.

    Args:
        model: the QA model (train mode is set here).
        optimizer: its optimiser (``make_optimizer``; restored by ``resume``).
        builder: makes each epoch's features (``first_epoch`` is epoch 0's, already built).
        first_epoch: epoch 0's features (they size the schedule).
        tokenizer: pads the batches.
        cfg: batch size and seed.
        opts: stop_at, save_every, log_every and the checkpoint folder.
        device: where the model is.
        use_bf16: bf16 autocast.
        start: the state to start from (step 0, or a resumed checkpoint's).
        teacher: the starting weights, frozen, whose spans ``cfg.distill`` and whose confidence on
            windows with an answer ``cfg.distill_confidence`` keep (``span_distillation``); None
            when both are 0.

    Returns:
        The state reached.
    """
    import torch

    plan, total = start.plan, start.plan.total
    scheduler = make_scheduler(optimizer, plan, start.step)
    steps_per_epoch = -(-len(first_epoch) // cfg.batch_size)
    step, seen, loss_avg = start.step, 0, None
    epoch = step // steps_per_epoch
    t0 = time.perf_counter()

    def stopping() -> bool:
        return step >= total or bool(opts.stop_at and step >= opts.stop_at)

    def state_now() -> LoopState:
        return LoopState(step, start.train_seconds + time.perf_counter() - t0, plan)

    model.train()
    bar = tqdm(total=total, initial=step, desc="training", unit="step", mininterval=5)
    while not stopping():
        feats = first_epoch if epoch == 0 else builder.build(epoch)
        batches = make_batches(feats, cfg.batch_size, cfg.seed * 7919 + epoch)
        for batch in batches[max(0, step - epoch * steps_per_epoch):]:
            if stopping():
                break
            ids, mask, types, sp, ep = (t.to(device, non_blocking=True) for t in collate(feats, batch, tokenizer))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                out = model(input_ids=ids, attention_mask=mask, token_type_ids=types, start_positions=sp, end_positions=ep)
                loss_t = out.loss
                if teacher is not None:
                    with torch.no_grad():
                        held = teacher(input_ids=ids, attention_mask=mask, token_type_ids=types)
                    loss_t = loss_t + held_loss(cfg, out, held, types, mask, sp)
            loss_t.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            seen += len(batch)
            loss = float(loss_t.detach())
            loss_avg = loss if loss_avg is None else 0.95 * loss_avg + 0.05 * loss
            bar.update(1)
            if step % opts.log_every == 0 or step == total:
                bar.set_postfix(epoch=epoch, loss=f"{loss_avg:.3f}", lr=f"{lr:.2e}",
                                windows_per_s=f"{seen / max(time.perf_counter() - t0, 1e-9):.1f}", refresh=False)
            if step % opts.save_every == 0 and step < total:
                save_checkpoint(opts.work, model, optimizer, state_now().record())
        epoch += 1
    bar.close()
    done = state_now()
    save_checkpoint(opts.work, model, optimizer, done.record())
    return done
