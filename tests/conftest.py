"""Hypothesis profiles: ``dev`` (default), ``ci`` and ``thorough``.

Pick one with ``pytest --hypothesis-profile NAME``.
"""

from hypothesis import HealthCheck, settings

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile("dev", max_examples=20, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile("ci", max_examples=40, deadline=None, suppress_health_check=_SLOW_OK, derandomize=True)
settings.register_profile(
    "thorough", max_examples=400, deadline=None, suppress_health_check=_SLOW_OK, print_blob=True
)
settings.load_profile("dev")
