"""Build small random-weight models of the real classes, saved with ``save_pretrained``.

Used by the tests, the benchmarks and the offline end-to-end loop: no model hub is reachable on the
project's machines, so every model the code loads "by id" in production is replaced by a local
directory holding a tiny model of the same class, loaded through the same production code path.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["build_llama", "build_tokenizer", "corpus"]

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]


def corpus() -> list[str]:
    """Texts in the GPT4Tools format to train a small tokenizer on."""
    from g4t.prompts import human_response, image_history, load_template, render_training_prompt, tool_response
    from g4t.tools import TOOLS

    tools = [(t.name, t.description) for t in TOOLS.values()]
    texts = [
        render_training_prompt(tools, image_history("image/abcdefgh.png", "a dog on a red sofa"), "detect the dog"),
        tool_response("Edge Detection On Image", "image/abcdefgh.png"),
        human_response("Result saved as image/ijklmnop.png"),
        load_template("gpt4tools").render("x"),
        load_template("gpt4tools_vicuna").render("x"),
        "Observation: image/qrstuvwx.png\nThought: Do I need to use a tool? No\nAI: [output_from_caption_tool]\n",
    ]
    return texts * 4


def build_tokenizer(path: str | Path, vocab_size: int = 1000, texts: Iterable[str] | None = None):
    """Train a byte-level BPE tokenizer (``<unk> <s> </s> <pad>``, BOS prepended) and save it to ``path``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(list(texts or corpus()), trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    fast.save_pretrained(str(path))
    return fast


def build_llama(
    path: str | Path,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 4096,
    vocab_size: int = 1000,
    seed: int = 0,
    tokenizer_texts: Iterable[str] | None = None,
    model_vocab_size: int | None = None,
    tie_word_embeddings: bool = True,
) -> Path:
    """Save a random-weight ``LlamaForCausalLM`` plus a locally trained tokenizer to ``path``.

    The defaults give a ~0.2M-parameter model; ``hidden_size=512, num_layers=8`` gives ~30M.
    ``model_vocab_size`` sizes the embedding and LM head beyond the tokenizer (32000 is the Llama /
    Vicuna vocabulary: a small model then has the real model's output layer); ``tie_word_embeddings=False``
    gives the separate ``lm_head`` of Llama checkpoints.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    tokenizer = build_tokenizer(path, vocab_size, tokenizer_texts)
    config = LlamaConfig(
        vocab_size=max(model_vocab_size or 0, len(tokenizer)),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or hidden_size * 8 // 3,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=tie_word_embeddings,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(path)
    return path
