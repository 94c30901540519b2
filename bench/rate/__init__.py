"""Submit -> Placed through the whole service at a fixed offered rate (issue 12: 100 and 1,000 submissions/s),
and the pieces the stall suite reuses: mock clouds in their own process, ``awan serve`` with its reconcile
loop in another, and an open-loop submitter."""
