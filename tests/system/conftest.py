"""System tests run only when asked for by name: ``pytest -m system`` (``make system-test``).

They boot VMs and emulate arm64 for many minutes. A marker expression that does not name
``system`` (``-m "not slow"``, the fast suite's) would otherwise select them by accident.
"""

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    expression = config.option.markexpr or ""
    if "system" in expression.replace("not system", ""):
        return
    chosen = [item for item in items if item.get_closest_marker("system") is None]
    if len(chosen) != len(items):
        config.hook.pytest_deselected(
            items=[item for item in items if item.get_closest_marker("system") is not None]
        )
        items[:] = chosen
