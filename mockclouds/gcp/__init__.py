"""A stateful fake of Google Compute Engine (compute/v1) and Cloud TPU (v2) REST, for the official SDKs.

Laid out as moto is: ``machines`` (the cloud's naming), ``compute``/``tpu`` (state), ``responses_*``
(the JSON wire format), ``urls`` (routing) and ``server`` (the WSGI app with faults and /_mock/*).
"""
