"""A fake Kubernetes API server that behaves like a CoreWeave CKS cluster.

Layers (each imports only downward): ``resources`` (what kinds exist, discovery documents),
``selectors`` and ``patches`` (pure helpers), ``store`` (objects, resourceVersions, watch history),
``controller`` (the CKS NodePool controller: NodePool -> Node objects against the capacity ledger),
``backend`` (state + controller + faults; implements mockclouds.control.MockBackend), ``render`` and
``api`` (HTTP: routing, auth, faults, Status objects, tables, watch streams) and ``server`` (start()).
"""
