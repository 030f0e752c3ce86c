"""The framework's floor for the serving benchmark: a trivial BentoML endpoint (no auth, no features, no model).

``bentoml serve service.bench.floor:Floor`` — the benchmark drives it at the same rates as the forecast API,
so the ratio between the two shows what pvcast adds on top of BentoML itself.
"""

from __future__ import annotations

import bentoml


@bentoml.service(name="floor", traffic={"timeout": 60, "max_concurrency": 32})
class Floor:
    @bentoml.api
    def ping(self, park_id: str = "x") -> dict[str, str]:
        return {"park_id": park_id}
