"""The AWS mock: moto in server mode behind ``moto_plus`` (capacity, quotas, reservations, capacity blocks,
placement groups, faults). Start it with ``mockclouds.aws.server.start``."""
