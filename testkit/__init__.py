"""Test support, outside the runtime path (nothing in ``g4t`` imports it): tiny random-weight models of
the real classes (``tiny``, ``tiny_vision``) and the one local fake OpenAI-compatible server (``fake_openai``:
chat/completions, streamed or not, with fault injection, driven by a responder) and the fake teacher
responder (``teacher_server``), scripted replies (``replies``) and long-job driving (``jobs``: signal a
subprocess once it has done some work). Used by the tests and the benches; installed with the package so benches find it."""
