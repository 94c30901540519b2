"""The reconcile loop: level-triggered, idempotent, leader-only. ``desired.py`` (placements -> node pool
specs) belongs to the provisioning side; everything else here is the loop, its queue and its steps."""
