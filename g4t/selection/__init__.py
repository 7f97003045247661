"""Data selection for GPT4Tools annotations: the InstructionGPT-4 method, adapted to tool use.

Modules: ``samples`` (record parsing), ``cache`` (on-disk score cache), ``indicators`` (length,
steps, tool-call validity), ``models`` (reward model, CLIP score), ``judge`` (LLM judge),
``features`` (MiniLM + PCA), ``clustering`` (k-means++ label subsets, spectral clusters, quotas),
``labels`` (fine-tune + evaluate loop), ``selector`` (attention selector), ``compare``
(correlations against plain indicators), ``report``, ``pipeline`` (``scripts/select_data.py``).
The offline teacher of the end-to-end proof lives in ``g4t.data.offline_teacher``.
No heavy import happens at package import.
"""
