"""The controller: model, policy, placement, reconcile, store, api, cli."""
