"""Entry point for the ``feast`` CLI (``feast -c feature_repo apply``): exposes pvcast's Feast objects.

This is the only module ``feast apply`` imports (see .feastignore). The objects themselves are built in
``feature_repo.views``; pvcast's own commands apply them without going through this file. The offline data
folder defaults to ``feature_repo/data`` and can be moved with PVCAST_OFFLINE_DIR.
"""

from pathlib import Path

from feature_repo.views import build_definitions
from pvcast.settings import PvcastSettings

_DEFINITIONS = build_definitions(PvcastSettings().offline_dir or Path(__file__).parent / "data")

park = _DEFINITIONS.park
park_source = _DEFINITIONS.park_source
park_push = _DEFINITIONS.park_push
park_view = _DEFINITIONS.park_view
weather_source = _DEFINITIONS.weather_source
weather_push = _DEFINITIONS.weather_push
weather_view = _DEFINITIONS.weather_view
generation_source = _DEFINITIONS.generation_source
generation_push = _DEFINITIONS.generation_push
generation_view = _DEFINITIONS.generation_view
pv_forecast_v1 = _DEFINITIONS.feature_service
