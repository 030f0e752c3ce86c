"""pvcast's core: everything training, the service, the benchmarks and the jobs share, and nothing they don't.

It holds the domain errors, the time rules, the shared names and units (``schema``), the settings, API-key
hashing, the model contract (ONNX inputs/outputs, metadata, onnxruntime session), the model store, the
baselines and the degraded-mode predictor, and per plant kind (``pvcast.pv``) the plant model, its physics
and the tensor builder.

The import rule (enforced by ``tests/test_layout.py``): the core imports nothing from ``feature_repo``,
``training`` or ``service``, and no torch, Feast, pandera, Open-Meteo client or BentoML internals, so it runs
in the service image and in every job alike. ``feature_repo`` imports the core; ``training`` and ``service``
import both and never each other.
"""
