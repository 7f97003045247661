"""Self-instruct data pipeline: teacher prompting, parsing, conversation building, dedup, splits, MagicBrush.

Modules (each small, each with one concern):

* ``catalog`` -- what the builder knows about each tool (arguments, condition tool, observation).
* ``teacher`` -- the published teacher prompt, rendered from the tool list.
* ``captions`` -- caption file loaders (published list, COCO captions JSON, JSONL).
* ``collect`` -- ``scripts/get_instruction.py``: concurrent, resumable teacher calls to JSONL.
* ``parse`` -- teacher replies -> ``Instruction`` items, with per-reason skip counts.
* ``build`` -- conversations and training/eval records, rendered through ``g4t.prompts``.
* ``dedup`` -- exact and near-duplicate instruction filtering.
* ``split`` -- split by image into train / val-seen / test-unseen.
* ``annotate`` -- ``scripts/generate_annotations.py``: the whole offline pipeline.
* ``magicbrush`` -- MagicBrush edit sessions -> chained editing samples.
"""
