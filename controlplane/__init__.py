"""The controller: model, policy, placement, reconcile, store, api, cli."""

__version__ = "0.1.0"   # kept equal to pyproject's version by tests/controlplane/cli/test_cli_habits.py
