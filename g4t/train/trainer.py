"""The training run: model + LoRA setup, HF ``Trainer`` under torchrun DDP, checkpoints, resume, logs.

``main(cfg)`` is what ``lora_finetune.py`` calls. Under ``torchrun`` every process runs it; the HF
``Trainer`` sets up DDP (gloo on CPU, nccl on GPU), and the global batch of ``batch_size`` samples is
reached with ``gradient_accumulation_steps = batch_size // micro_batch_size // world_size``, as
published. Checkpoints (``checkpoint-N/``) hold the adapter, optimizer, scheduler, RNG states and the
step, so a rerun continues exactly where a killed run stopped.

Long-job behaviour (docs/training.md): SIGINT / SIGTERM during training let the current optimizer
step finish, save a ``checkpoint-N/`` through the Trainer's own checkpoint mechanism and raise
``Interrupted`` (the CLI exits 130 / 143); before training starts they raise at once. A rerun of the
same command into the same ``--output_dir`` resumes from its newest checkpoint, and does nothing when
the adapter there is finished; a different configuration is refused instead of overwriting that work.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from g4t.data.io import atomic_write_text
from g4t.interrupts import Interrupted, signals_deferred, signals_raise_interrupted
from g4t.llm.sources import resolve_model
from g4t.precision import cpu_has_bf16, dtype_label, resolve_dtype
from g4t.train.config import CONFIG_FILE, LoraTrainConfig, TrainError
from g4t.train.data import load_records, split_records
from g4t.train.packing import VARLEN_ATTENTION, make_collator, pick_attn_implementation, supports_logits_mask
from g4t.train.tokenize import tokenize_records

__all__ = [
    "DistEnv",
    "finished_run",
    "has_weights",
    "linear_targets",
    "main",
    "resolve_resume",
    "run_differences",
    "write_training_config",
]

logger = logging.getLogger("g4t.train")


class DistEnv:
    """The torchrun environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``); 1 process without torchrun."""

    def __init__(self) -> None:
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _setup_logging(env: DistEnv) -> None:
    level = logging.INFO if env.is_main else logging.WARNING
    for handler in list(logger.handlers):  # a fresh handler on the current stderr (follows redirections)
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def _check_environment(cfg: LoraTrainConfig, cuda: bool) -> None:
    """Refuse configurations that cannot run here, with the fix in the message."""
    problems = []
    if (cfg.load_in_8bit or cfg.load_in_4bit) and not cuda:
        flag = "--load_in_8bit" if cfg.load_in_8bit else "--load_in_4bit"
        problems.append(
            f"{flag} (QLoRA / 8-bit training) needs a CUDA GPU and none is visible; drop the flag to train the "
            "unquantised model (LoRA on fp32/bf16 weights)"
        )
    if cfg.dtype in ("fp16", "float16") and not cuda:
        problems.append("--dtype fp16 needs a CUDA GPU; use --dtype bf16 or fp32 on CPU")
    if cfg.deepspeed:
        if importlib.util.find_spec("deepspeed") is None:
            problems.append("--deepspeed needs the deepspeed package (pip install deepspeed)")
        if not Path(cfg.deepspeed).is_file():
            problems.append(f"--deepspeed: config file {cfg.deepspeed!r} not found (one ships as configs/zero2.json)")
    for reporter in cfg.reporters:
        module = {"wandb": "wandb", "tensorboard": "tensorboard"}[reporter]
        if importlib.util.find_spec(module) is None and not (
            reporter == "tensorboard" and importlib.util.find_spec("tensorboardX")
        ):
            problems.append(f"--report_to {reporter} needs the {module} package (pip install {module})")
    if cfg.lora_model and not Path(cfg.lora_model).exists():
        problems.append(f"--lora_model {cfg.lora_model!r}: adapter directory not found")
    if problems:
        raise TrainError("; ".join(problems))


def resolve_resume(value: str | None, output_dir: str) -> tuple[str | None, bool]:
    """Turn ``--resume_from_checkpoint`` into ``(path, full)``.

    ``full`` is True for a Trainer checkpoint (``trainer_state.json``: optimizer, scheduler, RNG and data
    position are restored); False for a bare adapter directory (published fallback: weights only).
    ``last`` (or ``True``) picks the newest ``checkpoint-*`` in ``output_dir``; without one the run
    starts from scratch with a warning.

    Raises:
        TrainError: the path does not exist or holds neither a checkpoint nor an adapter.
    """
    from transformers.trainer_utils import get_last_checkpoint

    if value is None:
        return None, False
    if value == "last":
        last = get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None
        if last is None:
            logger.warning(f"--resume_from_checkpoint: no checkpoint-* in {output_dir}; starting from scratch")
            return None, False
        return last, True
    path = Path(value)
    if not path.is_dir():
        raise TrainError(f"--resume_from_checkpoint {value!r}: directory not found")
    if not (path / "trainer_state.json").is_file():
        last = get_last_checkpoint(str(path))  # an output_dir was given: take its newest checkpoint
        if last is not None:
            return last, True
        if any((path / n).is_file() for n in ("adapter_model.safetensors", "adapter_model.bin")):
            return str(path), False
        raise TrainError(f"--resume_from_checkpoint {value!r}: neither a checkpoint-N directory nor an adapter")
    return str(path), True


# Flags that change how a run is driven or reported, not what it computes: a rerun may change them
# and still resume (or find its finished adapter).
_OPERATIONAL = frozenset(
    {
        "resume_from_checkpoint", "logging_steps", "report_to", "wandb_project", "wandb_run_name", "wandb_watch",
        "wandb_log_model", "save_steps", "save_total_limit", "eval_steps", "gradient_checkpointing",
        "attn_implementation", "add_eos_token",
    }
)  # fmt: skip
# Files whose presence (with a final training_config.json) marks a finished run.
_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "model.safetensors.index.json")


def _same_path(a, b) -> bool:
    if a == b:
        return True
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(LoraTrainConfig) if f.default is not dataclasses.MISSING}


def run_differences(cfg: LoraTrainConfig, saved: dict[str, Any]) -> list[str]:
    """The flags (other than operational ones such as logging) in which ``cfg`` differs from a saved config.

    Args:
        cfg: the configuration of this run.
        saved: a ``training_config.json`` of an earlier run (or checkpoint).
    """
    out = []
    for key, value in cfg.to_dict().items():
        if key in _OPERATIONAL:
            continue
        if key not in saved and value == _DEFAULTS.get(key):
            continue  # a flag added after that run was saved, at its default
        old = saved.get(key)
        if key in ("base_model", "data_path", "lora_model", "deepspeed") and _same_path(old, value):
            continue
        if old != value:
            out.append(f"--{key} {old!r} -> {value!r}")
    return out


def _read_config(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def has_weights(path: str | Path) -> bool:
    """Whether ``path`` holds saved weights: an adapter or a full model (``_WEIGHTS``)."""
    return any((Path(path) / name).is_file() for name in _WEIGHTS)


def finished_run(cfg: LoraTrainConfig) -> dict[str, Any] | None:
    """The ``resolved`` record of a finished run of this configuration in ``cfg.output_dir``, else None.

    Raises:
        TrainError: ``output_dir`` holds the finished weights of another configuration (training here
            would overwrite them).
    """
    out = Path(cfg.output_dir)
    saved = _read_config(out)
    if saved is None or "global_step" not in saved.get("resolved", {}):
        return None
    if not has_weights(out):
        return None
    diffs = run_differences(cfg, saved)
    if diffs:
        raise TrainError(
            f"--output_dir {cfg.output_dir} holds the finished weights of another configuration "
            f"({'; '.join(diffs[:4])}{'; ...' if len(diffs) > 4 else ''}); training here would overwrite them: "
            "choose another --output_dir (or delete that one)"
        )
    return saved["resolved"]


def _auto_resume(cfg: LoraTrainConfig) -> str | None:
    """Without ``--resume_from_checkpoint``: the newest checkpoint of this same configuration, if any.

    Raises:
        TrainError: the newest checkpoint belongs to another configuration (a fresh run would overwrite it).
    """
    from transformers.trainer_utils import get_last_checkpoint

    if not Path(cfg.output_dir).is_dir():
        return None
    last = get_last_checkpoint(cfg.output_dir)
    if last is None:
        return None
    saved = _read_config(Path(last))
    diffs = ["(it has no training_config.json)"] if saved is None else run_differences(cfg, saved)
    if diffs:
        raise TrainError(
            f"--output_dir {cfg.output_dir} holds {Path(last).name} of another configuration "
            f"({'; '.join(diffs[:4])}{'; ...' if len(diffs) > 4 else ''}); choose another --output_dir, or continue "
            "it anyway with --resume_from_checkpoint last"
        )
    logger.info(f"{cfg.output_dir} holds {Path(last).name} of this configuration: resuming it")
    return last


def _tool_specs_hash() -> str | None:
    try:
        from g4t.tools import TOOLS

        blob = json.dumps(sorted((t.name, t.description) for t in TOOLS.values()), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()
    except Exception:  # the hash is informative only
        return None


def write_training_config(path: str | Path, cfg: LoraTrainConfig, resolved: dict[str, Any]) -> Path:
    """Write ``training_config.json``: every config field (``prompt_template_name`` at the top level) + ``resolved``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    data = {**cfg.to_dict(), "resolved": resolved}
    out = path / CONFIG_FILE
    atomic_write_text(out, json.dumps(data, indent=2, ensure_ascii=False) + "\n")  # never torn by a kill
    return out


def _load_tokenizer(cfg: LoraTrainConfig, source: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as e:
        raise TrainError(
            f"could not load the tokenizer of --base_model {cfg.base_model!r}: {str(e).strip().splitlines()[0]} "
            "(without hub access, pass a local model directory)"
        ) from None
    if tokenizer.pad_token_id is None:  # published: pad with unk (id 0), distinct from eos
        tokenizer.pad_token = tokenizer.unk_token if tokenizer.unk_token is not None else tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def _load_model(cfg: LoraTrainConfig, source: str, env: DistEnv, cuda: bool, attn: str, compute_dtype):
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"attn_implementation": attn}
    # LoRA on GPU: frozen base weights in the compute dtype (peft keeps the adapters in fp32).
    # Full fine-tuning and CPU: fp32 master weights, mixed precision via the Trainer.
    lora_gpu = cuda and not cfg.full_finetune
    kwargs["dtype"] = compute_dtype if lora_gpu else torch.float32
    if cfg.load_in_8bit or cfg.load_in_4bit:
        from g4t.precision import quantization_config

        kwargs["quantization_config"] = quantization_config(cfg.load_in_8bit, cfg.load_in_4bit, compute_dtype)
        kwargs["device_map"] = {"": env.local_rank}
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as e:
        raise TrainError(f"could not load --base_model {cfg.base_model!r}: {str(e).strip().splitlines()[0]}") from None
    model.config.use_cache = False
    if cfg.full_finetune:
        return model
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training

    if cfg.load_in_8bit or cfg.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    if cfg.lora_model:
        model = PeftModel.from_pretrained(model, cfg.lora_model, is_trainable=True)
        logger.info(
            f"continuing adapter {cfg.lora_model} (its own LoRA config applies: {model.peft_config['default'].r=})"
        )
    else:
        targets = cfg.lora_target_modules
        if targets == ["all-linear"]:
            targets = linear_targets(model)
        n_layers = getattr(model.config, "num_hidden_layers", None)
        if cfg.lora_layers and (not n_layers or cfg.lora_layers > n_layers):
            raise TrainError(f"--lora_layers {cfg.lora_layers}: the model has {n_layers or 'no countable'} layers")
        lora = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            target_modules=targets,
            layers_to_transform=list(range(n_layers - cfg.lora_layers, n_layers)) if cfg.lora_layers else None,
            lora_dropout=cfg.lora_dropout,
            bias="none",
            task_type="CAUSAL_LM",
        )
        try:
            model = get_peft_model(model, lora)
        except ValueError as e:
            raise TrainError(f"--lora_target_modules {cfg.lora_target_modules}: {e}") from None
    if cfg.gradient_checkpointing and hasattr(model, "enable_input_require_grads"):
        model.enable_input_require_grads()
    return model


def linear_targets(model) -> list[str]:
    """Module names of every linear layer but the output head (peft's ``all-linear``, spelled out)."""
    import torch

    head = model.get_output_embeddings()
    return sorted(
        {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m is not head}
    )


def _progress_callback(env: DistEnv):
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        """One line per log: step, epoch, loss, learning rate, non-padding tokens/s (all ranks summed)."""

        def on_train_begin(self, args, state, control, **kwargs):
            self._t, self._tokens = time.perf_counter(), state.num_input_tokens_seen

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs is None:
                return
            now, tokens = time.perf_counter(), state.num_input_tokens_seen
            if "loss" in logs and now > self._t:
                logs["tokens_per_second"] = round((tokens - self._tokens) / (now - self._t), 1)
                self._t, self._tokens = now, tokens
            if not env.is_main:
                return
            parts = [f"step {state.global_step}/{state.max_steps}", f"epoch {logs.get('epoch', state.epoch or 0):.2f}"]
            for key, fmt in (
                ("loss", "loss {:.4f}"),
                ("eval_loss", "eval_loss {:.4f}"),
                ("learning_rate", "lr {:.2e}"),
                ("grad_norm", "grad_norm {:.3f}"),
                ("tokens_per_second", "{:,.0f} tok/s"),
                ("train_loss", "train_loss {:.4f}"),
            ):
                if key in logs:
                    parts.append(fmt.format(logs[key]))
            if "train_loss" in logs and "train_runtime" in logs:
                parts.append(f"runtime {logs['train_runtime']:.1f}s")
            logger.info(" | ".join(parts))

    return ProgressCallback()


def _config_callback(cfg: LoraTrainConfig, resolved: dict[str, Any]):
    from transformers import TrainerCallback

    class ConfigCallback(TrainerCallback):
        """Put training_config.json into every checkpoint too, so any checkpoint is self-describing."""

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if ckpt.is_dir():
                    write_training_config(ckpt, cfg, {**resolved, "global_step": state.global_step})

    return ConfigCallback()


def _interrupt_callback(pending):
    from transformers import TrainerCallback

    class InterruptCallback(TrainerCallback):
        """After each optimizer step: if a signal arrived (on any rank), save a checkpoint and stop."""

        def on_step_end(self, args, state, control, **kwargs):
            signum = pending.signum or 0
            if args.world_size > 1:  # every rank must stop at the same step, or the others hang in a collective
                import torch
                import torch.distributed as dist

                flag = torch.tensor([signum], device=args.device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                signum = int(flag.item())
            if signum:
                pending.signum = pending.signum or signum
                control.should_save = True
                control.should_training_stop = True
                control.should_evaluate = False

    return InterruptCallback()


def _trainer_class(share_prefix: bool, seed: int):
    """``transformers.Trainer``, with the shared-prefix sample order when ``share_prefix``."""
    from transformers import Trainer

    if not share_prefix:
        return Trainer

    from g4t.train.shared_prefix import PrefixGroupedSampler

    class SharedPrefixTrainer(Trainer):
        def _get_train_sampler(self, train_dataset=None):
            return PrefixGroupedSampler(train_dataset if train_dataset is not None else self.train_dataset, seed)

    return SharedPrefixTrainer


def _count_params(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def main(cfg: LoraTrainConfig, callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Train, save the adapter (or full model) and ``training_config.json`` into ``cfg.output_dir``.

    A rerun into the same ``output_dir`` resumes from its newest checkpoint (same configuration) or,
    when the weights there are finished, returns their record without training.

    Args:
        cfg: the parsed configuration.
        callbacks: extra ``transformers.TrainerCallback`` objects (tests use one to kill a run).

    Returns:
        The ``resolved`` dict written to ``training_config.json`` (world size, accumulation, data stats...).

    Raises:
        TrainError: bad data, impossible flag combination, missing hardware or packages, or an
            ``output_dir`` that holds the work of another configuration.
        Interrupted: SIGINT / SIGTERM (in the main thread); during training after a checkpoint of the
            current step was saved.
    """
    with signals_raise_interrupted():
        return _train(cfg, callbacks)


def _train(cfg: LoraTrainConfig, callbacks: Sequence[Any]) -> dict[str, Any]:
    import torch
    import transformers
    from transformers import TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    from g4t.prompts import load_template

    env = DistEnv()
    _setup_logging(env)
    transformers.logging.set_verbosity_warning()
    cuda = torch.cuda.is_available()
    _check_environment(cfg, cuda)

    grad_accum = cfg.batch_size // cfg.micro_batch_size // env.world_size
    if grad_accum < 1:
        raise TrainError(
            f"--batch_size {cfg.batch_size} is smaller than --micro_batch_size {cfg.micro_batch_size} x "
            f"{env.world_size} processes; raise --batch_size or lower --micro_batch_size"
        )
    done = finished_run(cfg)
    if done is not None:
        logger.info(
            f"{cfg.output_dir} already holds the finished weights of this configuration (step {done['global_step']}, "
            f"train_loss {done.get('train_loss')}): nothing to do (delete it or choose another --output_dir to retrain)"
        )
        return done
    resume = cfg.resume_from_checkpoint if cfg.resume_from_checkpoint is not None else _auto_resume(cfg)
    resume_path, full_resume = resolve_resume(resume, cfg.output_dir)
    try:
        source = resolve_model(cfg.base_model)  # a Hub id, a folder, a .gguf file (converted once) or smollm2
    except ValueError as e:
        raise TrainError(f"--base_model: {e}") from None
    tokenizer = _load_tokenizer(cfg, source)
    try:  # "chat" is the tokenizer's own chat template
        template = load_template(cfg.prompt_template_name, tokenizer=tokenizer)
    except ValueError as e:
        raise TrainError(f"--prompt_template_name {cfg.prompt_template_name}: {e}") from None

    records = load_records(cfg.data_path)
    train_records, val_records = split_records(records, cfg.val_set_size, cfg.seed)
    train_data, train_stats = tokenize_records(
        tokenizer,
        template,
        train_records,
        cfg.cutoff_len,
        cfg.train_on_inputs,
        cfg.train_on_observations,
        cfg.train_on_chitchat,
    )
    logger.info(train_stats.summary(cfg.cutoff_len, "train"))
    if not train_data:
        raise TrainError(f"{cfg.data_path}: no trainable samples left after tokenization (raise --cutoff_len?)")
    val_data, val_stats = [], None
    if val_records:
        val_data, val_stats = tokenize_records(
            tokenizer,
            template,
            val_records,
            cfg.cutoff_len,
            cfg.train_on_inputs,
            cfg.train_on_observations,
            cfg.train_on_chitchat,
        )
        logger.info(val_stats.summary(cfg.cutoff_len, "val"))

    attn = pick_attn_implementation(cfg.attn_implementation, cfg.packing, cuda, cfg.share_prefix)
    compute_dtype = resolve_dtype(cfg.dtype, "cuda" if cuda else "cpu")
    logger.info(
        f"compute dtype {dtype_label(compute_dtype)} (--dtype {cfg.dtype}"
        + (f"; CPU bf16 units: {'yes' if cpu_has_bf16() else 'no'}" if not cuda else "")
        + "), fp32 master weights"
    )
    transformers.set_seed(cfg.seed)  # LoRA init is seeded too
    model = _load_model(cfg, source, env, cuda, attn, compute_dtype)
    if resume_path and not full_resume:
        from peft import load_peft_weights, set_peft_model_state_dict

        set_peft_model_state_dict(model, load_peft_weights(resume_path))
        logger.info(f"loaded adapter weights from {resume_path} (no trainer state there: optimizer starts fresh)")
        resume_path = None
    trainable, total = _count_params(model)
    logits_only = supports_logits_mask(model)
    logger.info(
        f"{'full fine-tuning' if cfg.full_finetune else 'LoRA'}: {trainable:,} trainable / {total:,} parameters "
        f"({100 * trainable / total:.3f}%); attention {attn}; "
        f"{'logits at trained positions only' if logits_only else 'logits at every position'}; world size {env.world_size}, micro-batch "
        f"{cfg.micro_batch_size}, gradient accumulation {grad_accum} -> "
        f"{cfg.micro_batch_size * grad_accum * env.world_size} samples per step"
    )

    resolved = {
        "world_size": env.world_size,
        "gradient_accumulation_steps": grad_accum,
        "effective_batch_size": cfg.micro_batch_size * grad_accum * env.world_size,
        "attn_implementation": attn,
        "logits_at_trained_positions_only": logits_only,
        "compute_dtype": dtype_label(compute_dtype),
        "template": {
            "name": template.name,
            "prompt_no_input": template.prompt_no_input,
            "response_split": template.response_split,
        },
        "train": train_stats.to_dict(),
        "val": val_stats.to_dict() if val_stats else None,
        "tool_specs_sha256": _tool_specs_hash(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": _version("peft")},
    }
    if env.is_main:
        write_training_config(cfg.output_dir, cfg, resolved)

    if cfg.wandb_project:
        os.environ["WANDB_PROJECT"] = cfg.wandb_project
    if cfg.wandb_watch:
        os.environ["WANDB_WATCH"] = cfg.wandb_watch
    if cfg.wandb_log_model:
        os.environ["WANDB_LOG_MODEL"] = cfg.wandb_log_model
    mixed = {"bf16": compute_dtype == torch.bfloat16, "fp16": compute_dtype == torch.float16}
    if cfg.load_in_8bit or cfg.load_in_4bit:
        mixed = {"bf16": False, "fp16": False}  # bitsandbytes computes in bnb_4bit_compute_dtype / fp16 itself
    has_val = bool(val_data)
    args = TrainingArguments(
        output_dir=cfg.output_dir,
        per_device_train_batch_size=cfg.micro_batch_size,
        per_device_eval_batch_size=cfg.micro_batch_size,
        gradient_accumulation_steps=grad_accum,
        num_train_epochs=cfg.num_epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_steps,
        lr_scheduler_type=cfg.lr_scheduler_type,
        optim="adamw_torch",
        logging_steps=cfg.logging_steps,
        eval_strategy="steps" if has_val else "no",
        eval_steps=cfg.eval_steps if has_val else None,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit or None,
        load_best_model_at_end=has_val and cfg.load_best_model_at_end,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=not cuda,
        ddp_backend=None if env.world_size == 1 else ("nccl" if cuda else "gloo"),
        ddp_find_unused_parameters=False if env.world_size > 1 else None,
        activation_checkpointing=cfg.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if cfg.gradient_checkpointing else None,
        deepspeed=cfg.deepspeed,
        report_to=cfg.reporters or "none",
        run_name=cfg.wandb_run_name or None,
        include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False,
        prediction_loss_only=True,  # evaluation reports the loss; no need to gather every logit
        disable_tqdm=True,
        dataloader_drop_last=False,
        **mixed,
    )
    collator = make_collator(tokenizer, cfg.packing, loss_logits_only=logits_only, share_prefix=cfg.share_prefix)
    trainer = _trainer_class(cfg.share_prefix, cfg.seed)(
        model=model,
        args=args,
        train_dataset=train_data,
        eval_dataset=val_data or None,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[_config_callback(cfg, resolved), *callbacks],
    )
    trainer.remove_callback(PrinterCallback)
    trainer.callback_handler.callbacks.insert(0, _progress_callback(env))  # first, so trackers see tokens/s
    if resume_path:
        logger.info(f"resuming from {resume_path} (optimizer, scheduler, RNG and data position)")
    with signals_deferred() as pending:  # a signal stops the loop after the current step, with a checkpoint
        trainer.add_callback(_interrupt_callback(pending))
        result = trainer.train(resume_from_checkpoint=resume_path)
    state = trainer.state
    if pending.signum is not None and state.global_step < state.max_steps:
        ckpt = Path(cfg.output_dir) / f"checkpoint-{state.global_step}"
        logger.warning(
            f"{Interrupted(pending.signum)}: stopped after step {state.global_step}/{state.max_steps}; "
            f"checkpoint saved to {ckpt}; rerun the same command to resume"
        )
        raise Interrupted(pending.signum)

    if cfg.share_prefix:
        packer = getattr(collator, "collator", collator)
        resolved["shared_prefix"] = {"sample_tokens": packer.sample_tokens, "computed_tokens": packer.packed_tokens}
        logger.info(
            f"shared prefixes: {packer.sample_tokens:,} sample tokens computed as {packer.packed_tokens:,} "
            f"({packer.sample_tokens / max(1, packer.packed_tokens):.2f}x fewer)"
        )
    if cfg.full_finetune and attn == VARLEN_ATTENTION:
        model.set_attn_implementation("sdpa")  # the saved config must not name our runtime-registered kernel
    trainer.save_model(cfg.output_dir)
    resolved.update(
        global_step=trainer.state.global_step,
        train_loss=result.training_loss,
        train_runtime_s=result.metrics.get("train_runtime"),
        num_input_tokens_seen=trainer.state.num_input_tokens_seen,
    )
    if env.is_main:
        write_training_config(cfg.output_dir, cfg, resolved)
        what = "model" if cfg.full_finetune else "adapter (PeftModel.from_pretrained(base, dir) loads it)"
        logger.info(f"saved the {what} and {CONFIG_FILE} to {cfg.output_dir}")
    pending.raise_if_set()  # the signal came during the last step: the run is finished and saved
    return resolved


def _version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None
