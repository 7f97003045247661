"""Test support, outside the runtime path (nothing in ``g4t`` imports it): tiny random-weight models of
the real classes (``tiny``, ``tiny_vision``) and local fake OpenAI-compatible servers (``teacher_server``:
a teacher with latency and fault injection; ``fake_openai``: chat/completions, streamed or not, with
injected 503s). Used by the tests and the benches; installed with the package so benches find it."""
