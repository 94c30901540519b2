"""Buying capacity on policy (issue 10): a PurchasingPolicy says what Awan may buy (AWS Capacity Blocks for
ML, GCP future reservations) for demand that waits, within a budget and a price; a proposal row records each purchase from the offering
found to the block bought, and in approve mode a person approves it first. See step.py for the loop step."""

from controlplane.purchasing.load import PurchasingError, PurchasingSource, parse_purchasing_text
from controlplane.purchasing.model import Budget, PurchasingConfig

__all__ = ["Budget", "PurchasingConfig", "PurchasingError", "PurchasingSource", "parse_purchasing_text"]
