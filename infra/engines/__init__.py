"""Engines run stack programs: the Pulumi Automation API where the CLI exists, the local engine
(mock runtime + provider adapters) elsewhere. ``infra.engines.select.select_engine`` picks one."""
