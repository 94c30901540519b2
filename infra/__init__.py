"""Provisioning: Pulumi programs (one stack per provider and region) and the engines that run them.

Layering: ``controlplane -> infra -> providers``; nothing here imports ``controlplane``, so the
inputs are infra's own types (``infra.spec``). Provider SDKs (pulumi_aws, ...) are imported lazily:
each costs 0.4-1 s.
"""
