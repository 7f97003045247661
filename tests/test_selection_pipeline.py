"""A miniature selection run end to end on CPU: offline teacher -> records -> select_data.py.

Indicators, MiniLM features (the bundled real model), k-means++ label subsets, the attention
selector, spectral clusters and quotas all run for real. The genuine-label step uses a cheap label
function here (a fine-tune per subset is minutes); the subprocess path (lora_finetune.py ->
inference.py -> evaluate_result.py) is exercised by the opt-in ``slow`` test below and by
``bench/e2e_loop.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from g4t.data.offline_teacher import write_replies
from g4t.selection.labels import SubprocessLabeler, label_subsets
from g4t.selection.pipeline import SelectDataConfig, run
from g4t.selection.samples import parse_sample

CAPTIONS = [
    {"file_name": f"{i}.png", "caption": c}
    for i, c in enumerate(
        [
            "A dog sleeping on a red sofa.",
            "Two cars parked next to a tree.",
            "A man riding a horse on a beach.",
            "A plate of pasta with tomatoes.",
            "A cat sitting in a window.",
            "Children playing football in a park.",
            "A red bus on a busy street.",
            "A bowl of fruit on a wooden table.",
        ]
    )
]


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """Training records built by the project's own builder from offline-teacher replies."""
    from g4t.data.annotate import AnnotateConfig
    from g4t.data.annotate import run as annotate

    d = tmp_path_factory.mktemp("pool")
    write_replies(CAPTIONS, d / "replies.jsonl", tools_per_caption=8, noise=0.25, seed=0)
    annotate(
        AnnotateConfig(input_path=str(d / "replies.jsonl"), output_path=str(d / "train.json"), complement=True, seed=0)
    )
    return d / "train.json"


def test_miniature_selection_run(pool, tmp_path):
    records = json.loads(pool.read_text())
    calls = []

    def cheap_label(subset, name):  # stands in for fine-tune + evaluate: share of final-answer samples
        calls.append(name)
        return float(np.mean([not parse_sample(r).actions for r in subset]))

    cfg = SelectDataConfig(
        data_path=str(pool),
        output_path=str(tmp_path / "selected.json"),
        budget=12,
        indicators=["length", "steps", "validity"],
        cache_dir=str(tmp_path / "cache"),
        device="cpu",
        n_clusters=3,
        n_subsets=6,
        subset_size=8,
        label_work_dir=str(tmp_path / "labels"),
        selector_epochs=60,
        cv_folds=3,
    )
    result = run(cfg, label_fn=cheap_label, log=lambda *_: None)
    selected = json.loads((tmp_path / "selected.json").read_text())
    assert len(selected) == 12 == len(result.selected)
    assert all(set(r) >= {"instruction", "input", "output"} and r in records for r in selected)
    assert len(result.subsets) == 6 and all(len(s) == 8 for s in result.subsets) and len(calls) == 6
    report = json.loads(result.paths["json"].read_text())
    assert sum(v["selected"] for v in report["per_cluster"].values()) == 12
    assert sum(v["selected"] for v in report["per_tool"].values()) == 12
    assert {"selector", "ridge", "length", "validity"} <= set(report["cv_correlations"])
    assert result.paths["png"].stat().st_size > 1000
    assert "Per tool" in result.paths["md"].read_text()
    # resumable: labels come from labels.json, indicator scores and embeddings from the cache
    calls.clear()
    again = run(cfg, label_fn=cheap_label, log=lambda *_: None)
    assert calls == [] and again.labels == result.labels
    np.testing.assert_array_equal(again.selected, result.selected)


def test_labels_none_ranks_by_indicators(pool, tmp_path):
    cfg = SelectDataConfig(
        data_path=str(pool),
        output_path=str(tmp_path / "s.json"),
        budget=5,
        labels="none",
        indicators=["validity"],
        cache_dir=str(tmp_path / "c"),
        n_clusters=2,
    )
    result = run(cfg, log=lambda *_: None)
    assert len(result.selected) == 5 and result.subsets == []


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="indicators"):
        SelectDataConfig(data_path="x.json", indicators=["length", "bogus"])
    with pytest.raises(ValueError, match="data_path"):
        SelectDataConfig()


@pytest.mark.slow
def test_subprocess_labeler_runs_the_real_scripts(pool, tiny_llama, tmp_path):
    """Genuine label of one subset through lora_finetune.py, inference.py and evaluate_result.py."""
    from g4t.data.annotate import AnnotateConfig
    from g4t.data.annotate import run as annotate

    replies = tmp_path / "replies.jsonl"
    write_replies(CAPTIONS, replies, tools_per_caption=3, seed=1)
    annotate(
        AnnotateConfig(
            input_path=str(replies),
            output_path=str(tmp_path / "t.json"),
            complement=True,
            val_ratio=0.4,
            val_path=str(tmp_path / "val.json"),
            seed=1,
        )
    )
    val = json.loads((tmp_path / "val.json").read_text())[:3]
    (tmp_path / "val3.json").write_text(json.dumps(val))
    labeler = SubprocessLabeler(
        tiny_llama,
        str(tmp_path / "val3.json"),
        str(tmp_path / "work"),
        [
            "--max_steps",
            "2",
            "--micro_batch_size",
            "2",
            "--batch_size",
            "2",
            "--cutoff_len",
            "1024",
            "--save_steps",
            "1000",
            "--eval_steps",
            "1000",
        ],
        ["--max_new_tokens", "8", "--llm_device", "cpu"],
    )
    records = json.loads(pool.read_text())[:4]
    labels = label_subsets(records, [[0, 1, 2, 3]], labeler, tmp_path / "work" / "labels.json", log=lambda *_: None)
    assert len(labels) == 1 and 0.0 <= labels[0] <= 1.0
    assert (tmp_path / "work" / "labels.json").is_file()


def test_select_data_cli_help(capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "select_data", Path(__file__).parent.parent / "scripts/select_data.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as e:
        module.main(["--help"])
    assert e.value.code == 0 and "--budget" in capsys.readouterr().out
