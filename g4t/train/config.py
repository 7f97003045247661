"""``LoraTrainConfig``: every published ``lora_finetune.py`` argument, plus the modern knobs.

The published CLI (alpaca-lora lineage, run through ``fire``) is kept argument for argument, with its
defaults, except where the published default could not work (``prompt_template_name="alpaca"``: the
template was never shipped) or is documented as changed (``train_on_inputs``: response-only loss by
default, as in the later GPT4Tools ``train.py``). See ``docs/training.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from g4t.cli import arg, split_list
from g4t.precision import DTypeName
from g4t.prompts import TRAINING_CONFIG_FILE, available_templates

__all__ = ["CONFIG_FILE", "LoraTrainConfig", "TemplateName", "TrainError"]

# Written next to every adapter (and every checkpoint); inference.py / gpt4tools.py read
# ``prompt_template_name`` from it to pick the right template automatically.
CONFIG_FILE = TRAINING_CONFIG_FILE

# The templates on disk (templates/*.json) plus "chat": one list, read where it lives.
TemplateName = Literal[tuple(available_templates())]
_REPORTERS = {"none", "wandb", "tensorboard"}
_RESUME_LAST = {"true", "last"}
_RESUME_NONE = {"", "false", "none"}


class TrainError(RuntimeError):
    """A problem the user can fix (bad data, bad flag combination, missing hardware); printed without a traceback."""


@dataclass
class LoraTrainConfig:
    """Configuration of ``lora_finetune.py`` (one attribute per CLI flag)."""

    # --- model / data (published) ---
    base_model: str = arg(
        help="Base model (required): Hugging Face id, local directory, .gguf file, or smollm2 (packaged SmolLM2-135M-Instruct)."
    )
    data_path: str = arg("yahma/alpaca-cleaned", help="Training data: .json (list of records) or .jsonl file.")
    output_dir: str = arg("./lora-alpaca", help="Where the adapter, checkpoints and training_config.json go.")
    # --- training hyperparameters (published) ---
    batch_size: int = arg(128, help="Global batch size in samples per optimizer step (published README: 512).")
    micro_batch_size: int = arg(4, help="Samples per forward pass per process (published README: 8).")
    num_epochs: int = arg(3, help="Passes over the training set (published README: 6).")
    learning_rate: float = arg(3e-4, help="Peak AdamW learning rate (3e-4 for LoRA; HEAD v1.5 script: 2e-5).")
    cutoff_len: int = arg(256, help="Max tokens per sample; longer samples are truncated (README: 2048).")
    val_set_size: int = arg(2000, help="Samples held out for validation (0: train on everything).")
    # --- LoRA hyperparameters (published) ---
    lora_r: int = arg(8, help="LoRA rank (published README: 16).")
    lora_alpha: int = arg(16, help="LoRA scaling numerator: the update is scaled by alpha / r.")
    lora_dropout: float = arg(0.05, help="Dropout on the LoRA input path.")
    lora_target_modules: list[str] = arg(
        default_factory=lambda: ["q_proj", "v_proj"],
        help="Modules that get LoRA adapters, e.g. '[q_proj,k_proj,v_proj,o_proj]' (README), q_proj v_proj, or "
        "all-linear (every linear layer but the output head).",
    )
    lora_layers: int = arg(
        0,
        help="Adapt only the last N transformer layers (0: all layers, as published). The layers below get no "
        "gradient, so the backward pass stops above them: cheaper steps on CPU.",
    )
    # --- LLM hyperparameters (published) ---
    train_on_inputs: bool = arg(
        False,
        help="Also train on the prompt tokens. Default False: loss on the response only (published alpaca-lora "
        "default was True; the later GPT4Tools train.py masks the prompt).",
    )
    train_on_observations: bool = arg(
        True,
        help="Also train on the tool results after each 'Observation:' (published). False masks them: the "
        "model never writes them, and generated results are random file names whose loss is noise.",
    )
    train_on_chitchat: bool = arg(
        True,
        help="Also train on the text of final answers given without any tool (chit-chat), as published. False "
        "masks that text and keeps the decision ('Thought: ... No', 'AI:') and EOS: a small model's "
        "world-knowledge answers are otherwise most of the loss and drown the tool-use decisions.",
    )
    add_eos_token: bool = arg(
        False,
        help="Published flag; only affected the prompt-length computation (EOS is always appended to untruncated "
        "samples, as published). Accepted for compatibility.",
    )
    group_by_length: bool = arg(False, help="Batch samples of similar length together (less padding, faster).")
    # --- wandb (published) ---
    wandb_project: str = arg("", help="Weights & Biases project; setting it turns on wandb reporting.")
    wandb_run_name: str = arg("", help="W&B run name.")
    wandb_watch: str = arg("", help="W&B watch mode: false | gradients | all.")
    wandb_log_model: str = arg("", help="W&B model logging: false | true.")
    resume_from_checkpoint: str | None = arg(
        None,
        help="Continue from a checkpoint: a checkpoint-N directory, or True / last for the newest checkpoint-* in "
        "output_dir (optimizer, scheduler, RNG and data position are restored).",
    )
    prompt_template_name: TemplateName = arg(
        "gpt4tools",
        help="Conversation template from templates/ (published v1.1 recipe: gpt4tools), or 'chat': the base "
        "model tokenizer's own chat template (train a chat model in its native format). --template is the same "
        "flag, as in inference.py and gpt4tools.py; saved as prompt_template_name in training_config.json.",
        aliases=["--template"],
    )
    # --- additions ---
    lora_model: str | None = arg(None, help="Existing peft adapter to continue training (loaded trainable).")
    load_in_8bit: bool = arg(
        False, help="Quantise the base model to int8 with bitsandbytes (CUDA only).", aliases=["--load_8bit"]
    )
    load_in_4bit: bool = arg(False, help="QLoRA: quantise the base model to 4-bit NF4 (CUDA only).")
    dtype: DTypeName = arg(
        "auto",
        help="Compute precision (autocast; master weights stay fp32): auto = bf16 on GPUs that support it, else "
        "fp16 on GPU; bf16 on CPUs with AMX / AVX-512 BF16, else fp32. bfloat16/float16/float32 also accepted.",
    )
    gradient_checkpointing: bool = arg(False, help="Recompute activations in backward: less memory, ~30% slower.")
    deepspeed: str | None = arg(None, help="DeepSpeed JSON config, e.g. configs/zero2.json (needs deepspeed).")
    seed: int = arg(42, help="Seed for the validation split, data order, LoRA init and dropout.")
    packing: bool = arg(
        False,
        help="Padding-free batches: each micro-batch is one flat sequence with per-sample position ids and "
        "attention kept within each sample. Same loss, no compute spent on padding.",
    )
    share_prefix: bool = arg(
        False,
        help="Packing that computes a prompt prefix shared by samples of a micro-batch once (records cut from one "
        "conversation, or one session: generate_annotations.py --session_prompts); such samples are batched "
        "together. Same loss and gradients; implies --packing.",
    )
    full_finetune: bool = arg(False, help="Train every weight instead of a LoRA adapter (saves a full model).")
    max_steps: int = arg(-1, help="Stop after this many optimizer steps (-1: run num_epochs).")
    save_steps: int = arg(200, help="Save a checkpoint every N optimizer steps.")
    save_total_limit: int = arg(3, help="Keep at most N checkpoints (oldest deleted).")
    eval_steps: int = arg(200, help="Evaluate on the validation split every N steps.")
    logging_steps: int = arg(10, help="Log loss, learning rate and tokens/s every N steps.")
    warmup_steps: int = arg(100, help="Linear learning-rate warmup steps.")
    lr_scheduler_type: str = arg("linear", help="Learning-rate schedule after warmup: linear, cosine, constant...")
    weight_decay: float = arg(0.0, help="AdamW weight decay (published: 0).")
    load_best_model_at_end: bool = arg(True, help="With a validation split, keep the best checkpoint at the end.")
    report_to: str = arg("none", help="Experiment trackers: none, wandb, tensorboard (comma-separated).")
    attn_implementation: str = arg(
        "auto", help="auto (packing: varlen attention; otherwise sdpa), sdpa, eager, flash_attention_2."
    )

    def __post_init__(self) -> None:
        problems: list[str] = []
        self.lora_target_modules = split_list(self.lora_target_modules)
        if not self.base_model:
            problems.append("--base_model is required (a Hugging Face id or a local model directory)")
        for name in (
            "batch_size",
            "micro_batch_size",
            "num_epochs",
            "cutoff_len",
            "lora_r",
            "save_steps",
            "eval_steps",
            "logging_steps",
        ):
            if getattr(self, name) <= 0:
                problems.append(f"--{name} must be positive, got {getattr(self, name)}")
        for name in ("val_set_size", "warmup_steps", "save_total_limit", "lora_layers"):
            if getattr(self, name) < 0:
                problems.append(f"--{name} must be >= 0, got {getattr(self, name)}")
        if self.micro_batch_size > 0 and self.batch_size % self.micro_batch_size:
            problems.append(
                f"--batch_size {self.batch_size} must be a multiple of --micro_batch_size {self.micro_batch_size}"
            )
        if self.learning_rate <= 0:
            problems.append(f"--learning_rate must be positive, got {self.learning_rate}")
        if not 0 <= self.lora_dropout < 1:
            problems.append(f"--lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.full_finetune and not self.lora_target_modules and not self.lora_model:
            problems.append("--lora_target_modules is empty")
        if self.load_in_8bit and self.load_in_4bit:
            problems.append("choose at most one of --load_in_8bit and --load_in_4bit")
        if self.full_finetune and (self.load_in_8bit or self.load_in_4bit):
            problems.append("--full_finetune cannot train quantised weights; drop --load_in_8bit/--load_in_4bit")
        if self.full_finetune and self.lora_model:
            problems.append("--full_finetune and --lora_model exclude each other")
        reporters = split_list(self.report_to) or ["none"]
        bad = [r for r in reporters if r not in _REPORTERS]
        if bad:
            problems.append(f"--report_to: unknown {bad}; choose from {sorted(_REPORTERS)}")
        self.report_to = ",".join(reporters)
        if self.val_set_size > 0 and self.load_best_model_at_end and self.save_steps % self.eval_steps:
            problems.append(
                f"--save_steps {self.save_steps} must be a multiple of --eval_steps {self.eval_steps} with a validation "
                "split and --load_best_model_at_end (or pass --load_best_model_at_end False)"
            )
        if self.share_prefix:
            self.packing = True
            if self.attn_implementation not in ("auto", "g4t_varlen_sdpa"):
                problems.append(
                    f"--share_prefix needs its own attention (--attn_implementation auto), got {self.attn_implementation}"
                )
        if isinstance(self.resume_from_checkpoint, bool):
            self.resume_from_checkpoint = "last" if self.resume_from_checkpoint else None
        if self.resume_from_checkpoint is not None:
            value = str(self.resume_from_checkpoint).strip()
            if value.lower() in _RESUME_NONE:
                self.resume_from_checkpoint = None
            elif value.lower() in _RESUME_LAST:
                self.resume_from_checkpoint = "last"
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def reporters(self) -> list[str]:
        """``report_to`` as a list, with wandb added when ``wandb_project`` is set (published behaviour)."""
        out = [r for r in split_list(self.report_to) if r != "none"]
        if self.wandb_project and "wandb" not in out:
            out.append("wandb")
        return out

    def to_dict(self) -> dict:
        """A JSON-serialisable copy of every field."""
        return dataclasses.asdict(self)
