"""LoRA / full fine-tuning: data loading, tokenization with label masking, packing, the training run."""

from g4t.train.config import CONFIG_FILE, LoraTrainConfig, TrainError
from g4t.train.data import load_records, split_records
from g4t.train.tokenize import IGNORE_INDEX, tokenize_records, tokenize_sample

__all__ = [
    "CONFIG_FILE",
    "IGNORE_INDEX",
    "LoraTrainConfig",
    "TrainError",
    "load_records",
    "split_records",
    "tokenize_records",
    "tokenize_sample",
]
