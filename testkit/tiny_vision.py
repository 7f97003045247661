"""Tiny random-weight vision models of the real classes, saved like the published checkpoints.

Each builder writes a directory that the production loaders read exactly as they read a hub id
(``from_pretrained`` for transformers / diffusers, controlnet_aux's own file names for the
annotators). Sizes follow ../shared/reference/feasibility.md section 3; every model runs a forward
pass in milliseconds on one CPU thread. Used by the tests and ``bench/tool_memory.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = [
    "CONTROLNET_CLASSES",
    "CONTROLNET_KINDS",
    "build_blip_captioning",
    "build_blip_vqa",
    "build_clip_tokenizer",
    "build_detr",
    "build_dpt",
    "build_grounding_dino",
    "build_hed",
    "build_mlsd",
    "build_openpose",
    "build_sam",
    "build_sd_family",
    "build_upernet",
]

CONTROLNET_KINDS = ("canny", "mlsd", "hed", "scribble", "openpose", "seg", "depth", "normal")
# The ``--load`` class of each tiny ControlNet built by ``build_sd_family`` (``controlnet-<kind>``).
CONTROLNET_CLASSES = {
    "canny": "CannyText2Image",
    "mlsd": "LineText2Image",
    "hed": "HedText2Image",
    "scribble": "ScribbleText2Image",
    "openpose": "PoseText2Image",
    "seg": "SegText2Image",
    "depth": "DepthText2Image",
    "normal": "NormalText2Image",
}


def _seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


# --------------------------------------------------------------------------- Stable Diffusion family
def _byte_chars() -> list[str]:
    """The 256 printable characters GPT-2/CLIP byte-level BPE uses for the bytes 0..255."""
    keep = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars, extra = [], 0
    for b in range(256):
        if b in keep:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def build_clip_tokenizer(path: str | Path):
    """A CLIP BPE tokenizer over the 256 byte characters (no merges) saved as vocab.json/merges.txt."""
    from transformers import CLIPTokenizer

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    chars = _byte_chars()
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    (path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"), model_max_length=32)
    tok.save_pretrained(str(path))
    return tok


def _unet(in_channels: int, seed: int):
    from diffusers import UNet2DConditionModel

    _seed(seed)
    return UNet2DConditionModel(
        sample_size=32,
        in_channels=in_channels,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    )


def _controlnet(seed: int):
    from diffusers import ControlNetModel

    _seed(seed)
    return ControlNetModel(
        in_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
        conditioning_embedding_out_channels=(8, 16),
    )


def build_sd_family(root: str | Path, seed: int = 0) -> dict[str, Path]:
    """Save tiny checkpoints laid out like the real ones, sharing what the real ones share.

    Returns directories by role: ``base`` (SD 1.5: unet/vae/text_encoder/tokenizer/scheduler),
    ``inpaint`` (9-channel UNet), ``pix2pix`` and ``magicbrush`` (8-channel UNets) -- all four with
    the same VAE and text encoder weights, as the real checkpoints have -- and ``controlnet-<kind>``
    for each of ``CONTROLNET_KINDS``.
    """
    from diffusers import AutoencoderKL, PNDMScheduler
    from transformers import CLIPTextConfig, CLIPTextModel

    root = Path(root)
    _seed(seed)
    vae = AutoencoderKL(
        block_out_channels=(16, 32),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=514,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=32,
            bos_token_id=512,
            eos_token_id=513,
            pad_token_id=513,
        )
    )
    scheduler = PNDMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True, steps_offset=1
    )
    dirs: dict[str, Path] = {}
    for role, in_channels, unet_seed in (("base", 4, 1), ("inpaint", 9, 2), ("pix2pix", 8, 3), ("magicbrush", 8, 4)):
        d = root / role
        _unet(in_channels, seed + unet_seed).save_pretrained(d / "unet")
        vae.save_pretrained(d / "vae")
        text_encoder.save_pretrained(d / "text_encoder")
        build_clip_tokenizer(d / "tokenizer")
        scheduler.save_pretrained(d / "scheduler")
        (d / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
        dirs[role] = d
    for i, kind in enumerate(CONTROLNET_KINDS):
        d = root / f"controlnet-{kind}"
        _controlnet(seed + 10 + i).save_pretrained(d)
        dirs[f"controlnet-{kind}"] = d
    return dirs


# --------------------------------------------------------------------------- transformers models
def _wordpiece(words: list[str], specials: list[str], vocab_size: int = 200):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(words, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    return tok


def _build_blip(path: str | Path, model_class: str, texts: list[str], seed: int) -> Path:
    """A tiny BLIP model of ``model_class`` (captioning or VQA) with its ``BlipProcessor``."""
    import transformers
    from tokenizers import processors
    from transformers import BertTokenizerFast, BlipConfig, BlipImageProcessor, BlipProcessor

    path = Path(path)
    tok = _wordpiece(texts, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "[ENC]"])
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    tokenizer = BertTokenizerFast(tokenizer_object=tok, bos_token="[DEC]", model_max_length=64)
    BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer
    ).save_pretrained(str(path))
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 128,
        "max_position_embeddings": 64,
        "encoder_hidden_size": 64,
        "bos_token_id": tok.token_to_id("[DEC]"),
        "pad_token_id": 0,
        "sep_token_id": sep_id,
        "eos_token_id": sep_id,
    }
    vision = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}
    config = BlipConfig(
        text_config=text, vision_config={**vision, "image_size": 32, "patch_size": 8}, projection_dim=64
    )
    config.decoder_start_token_id = text["bos_token_id"]
    _seed(seed)
    getattr(transformers, model_class)(config).save_pretrained(path)
    return path


def build_blip_captioning(path: str | Path, seed: int = 0) -> Path:
    """A tiny ``BlipForConditionalGeneration`` with its ``BlipProcessor``."""
    texts = ["a photo of a dog on a red sofa", "a cat sitting next to a window", "a picture of", "an image of a man"]
    return _build_blip(path, "BlipForConditionalGeneration", texts, seed)


def build_blip_vqa(path: str | Path, seed: int = 0) -> Path:
    """A tiny ``BlipForQuestionAnswering`` with its ``BlipProcessor``."""
    texts = ["what color is the car", "how many dogs are there", "yes no red blue two one"]
    return _build_blip(path, "BlipForQuestionAnswering", texts, seed)


def _bert_ids_tokenizer(path: Path, words: list[str]):
    """A WordPiece tokenizer whose [CLS]/[SEP]/"."/"?" have the bert-base-uncased ids (101/102/1012/1029).

    GroundingDINO hard-codes those ids to cut the caption into phrases, so a tiny tokenizer must keep them.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    fixed = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103, ".": 1012, "?": 1029}
    vocab = dict(fixed)
    free = (i for i in range(1, 1100) if i not in fixed.values())
    for w in sorted({w for line in words for w in line.lower().split()} | set("abcdefghijklmnopqrstuvwxyz,")):
        vocab.setdefault(w, next(free))
    for i in range(1, 1100):  # contiguous ids: fill the gaps with unused tokens
        if i not in vocab.values():
            vocab[f"[unused{i}]"] = i
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 101), ("[SEP]", 102)]
    )
    return BertTokenizerFast(tokenizer_object=tok, model_max_length=32)


def build_grounding_dino(path: str | Path, seed: int = 0) -> Path:
    """A tiny ``GroundingDinoForObjectDetection`` (Swin 64px, BERT 1 layer, d_model 32) + processor."""
    from transformers import (
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    path = Path(path)
    tokenizer = _bert_ids_tokenizer(path, ["a dog a cat a car the square object person sky"])
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 128, "longest_edge": 256})
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(str(path))
    config = GroundingDinoConfig(
        backbone_config={
            "model_type": "swin",
            "image_size": 64,
            "patch_size": 4,
            "embed_dim": 16,
            "depths": [1, 1, 1, 1],
            "num_heads": [1, 1, 2, 2],
            "window_size": 4,
            "out_features": ["stage2", "stage3", "stage4"],
        },
        text_config={
            "model_type": "bert",
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
        },
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_queries=20,
        num_feature_levels=4,
        encoder_n_points=2,
        decoder_n_points=2,
        max_text_len=32,
        disable_custom_kernels=True,
    )
    _seed(seed)
    GroundingDinoForObjectDetection(config).save_pretrained(path)
    return path


def build_sam(path: str | Path, seed: int = 0) -> Path:
    """A tiny ``SamModel`` (64px ViT, 40k parameters) with its ``SamProcessor``."""
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    path = Path(path)
    SamProcessor(
        image_processor=SamImageProcessor(
            size={"longest_edge": 64}, pad_size={"height": 64, "width": 64}, mask_size={"longest_edge": 16}
        )
    ).save_pretrained(str(path))
    config = SamConfig(
        vision_config={
            "hidden_size": 32,
            "output_channels": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 64,
            "patch_size": 8,
            "mlp_dim": 64,
            "intermediate_size": 64,
            "window_size": 4,
            "global_attn_indexes": [1],
            "num_pos_feats": 8,
        },
        prompt_encoder_config={"hidden_size": 16, "image_size": 64, "patch_size": 8, "mask_input_channels": 4},
        mask_decoder_config={"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "mlp_dim": 32},
    )
    _seed(seed)
    SamModel(config).save_pretrained(path)
    return path


def build_dpt(path: str | Path, seed: int = 0) -> Path:
    """A tiny ``DPTForDepthEstimation`` (64px, hidden 32) with its image processor."""
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    path = Path(path)
    DPTImageProcessor(size={"height": 64, "width": 64}).save_pretrained(str(path))
    config = DPTConfig(
        image_size=64,
        patch_size=16,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        backbone_out_indices=[0, 1, 2, 3],
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        reassemble_factors=[4, 2, 1, 0.5],
        head_in_index=-1,
    )
    _seed(seed)
    DPTForDepthEstimation(config).save_pretrained(path)
    return path


def build_upernet(path: str | Path, seed: int = 0, num_labels: int = 150) -> Path:
    """A tiny ``UperNetForSemanticSegmentation`` (ConvNeXt backbone) with 150 ADE20K labels."""
    from transformers import ConvNextConfig, SegformerImageProcessor, UperNetConfig, UperNetForSemanticSegmentation

    path = Path(path)
    SegformerImageProcessor(size={"height": 64, "width": 64}, do_reduce_labels=False).save_pretrained(str(path))
    backbone = ConvNextConfig(
        num_channels=3,
        hidden_sizes=[8, 16, 24, 32],
        depths=[1, 1, 1, 1],
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    config = UperNetConfig(
        backbone_config=backbone,
        hidden_size=16,
        auxiliary_in_channels=24,
        auxiliary_channels=8,
        num_labels=num_labels,
        use_auxiliary_head=False,
    )
    _seed(seed)
    UperNetForSemanticSegmentation(config).save_pretrained(path)
    return path


def build_detr(path: str | Path, seed: int = 0) -> Path:
    """A tiny ``DetrForObjectDetection`` (ResNet backbone from transformers, no timm) with COCO-like labels."""
    from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessor, ResNetConfig

    path = Path(path)
    DetrImageProcessor(size={"shortest_edge": 64, "longest_edge": 128}).save_pretrained(str(path))
    labels = ["person", "dog", "car", "cat", "square"]
    config = DetrConfig(
        use_timm_backbone=False,
        use_pretrained_backbone=False,
        backbone_config=ResNetConfig(
            embedding_size=8, hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], out_features=["stage4"]
        ),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_queries=10,
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    _seed(seed)
    DetrForObjectDetection(config).save_pretrained(path)
    return path


# --------------------------------------------------------------------------- controlnet_aux annotators
def _save_state(module, file: Path, zero: tuple[str, ...] = (), strip_prefix: bool = False) -> None:
    """Save ``module``'s state dict in fp16 (halves the file; the loaders copy into fp32 params).

    Args:
        zero: key prefixes whose tensors are saved as zeros.
        strip_prefix: drop the first key component (the layout of the original OpenPose files).
    """
    import torch

    file.parent.mkdir(parents=True, exist_ok=True)
    state = {}
    for k, v in module.state_dict().items():
        if k.startswith(zero) and zero:
            v = torch.zeros_like(v)
        state[k.split(".", 1)[1] if strip_prefix else k] = v.half() if v.is_floating_point() else v
    torch.save(state, file)


def build_mlsd(path: str | Path, seed: int = 0) -> Path:
    """``mlsd_large_512_fp32.pth`` with random weights of controlnet_aux's ``MobileV2_MLSD_Large``."""
    from controlnet_aux.mlsd.models.mbv2_mlsd_large import MobileV2_MLSD_Large

    _seed(seed)
    _save_state(MobileV2_MLSD_Large(), Path(path) / "mlsd_large_512_fp32.pth")
    return Path(path)


def build_hed(path: str | Path, seed: int = 0) -> Path:
    """``ControlNetHED.pth`` with random weights of controlnet_aux's ``ControlNetHED_Apache2``."""
    from controlnet_aux.hed import ControlNetHED_Apache2

    _seed(seed)
    _save_state(ControlNetHED_Apache2(), Path(path) / "ControlNetHED.pth")
    return Path(path)


def build_openpose(path: str | Path, seed: int = 0) -> Path:
    """``body_pose_model.pth`` of controlnet_aux's OpenPose body network (random weights; the output
    heads are zeroed so the heatmaps stay flat and no person is found, which keeps the test fast)."""
    from controlnet_aux.open_pose.model import bodypose_model

    _seed(seed)
    _save_state(bodypose_model(), Path(path) / "body_pose_model.pth", zero=("model6_1", "model6_2"), strip_prefix=True)
    return Path(path)
