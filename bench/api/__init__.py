"""The API benchmark: submit/list throughput and latency on SQLite and PostgreSQL, and reconcile throughput."""
