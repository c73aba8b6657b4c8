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


def pytest_collection_modifyitems(config, items):
    """A test marked ``slow(selected_only=True)`` (the full default sweep: ~10 minutes) runs only when
    ``-m`` names ``slow`` (``pytest -m slow``); other slow tests stay in the default run."""
    import pytest

    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="minutes long: runs with pytest -m slow")
    for item in items:
        marker = item.get_closest_marker("slow")
        if marker is not None and marker.kwargs.get("selected_only"):
            item.add_marker(skip)
