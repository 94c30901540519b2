"""The API under a large submit and a large store: /healthz latency during a 10,000-document submit, and
submit/list latency as the store grows, for this tree and a peer (another git revision, by default main)."""
