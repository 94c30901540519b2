from __future__ import annotations

import logging

from controlplane.logs import MASK, configure_logging, get_logger, redact, scrub


def test_scrub_masks_registered_values_and_secret_keys() -> None:
    redact(["awan-test-secret-123"])
    event = {"msg": "calling with awan-test-secret-123", "nested": [{"Authorization": "Bearer x"}],
             "token": "abc", "count": 3}
    out = scrub(event)
    assert "awan-test-secret-123" not in str(out)
    assert out["nested"][0]["Authorization"] == MASK and out["token"] == MASK and out["count"] == 3


def test_structlog_and_stdlib_output_carry_no_secret(capsys) -> None:
    redact(["awan-test-secret-456"])
    configure_logging("INFO")
    get_logger().info("provider call", endpoint="http://x", detail="key=awan-test-secret-456")
    logging.getLogger("botocore").warning("signing with %s", "awan-test-secret-456")
    err = capsys.readouterr().err
    assert "provider call" in err and "signing with" in err
    assert "awan-test-secret-456" not in err


def test_logging_follows_the_current_stderr_after_the_old_one_closed(monkeypatch, capsys) -> None:
    import io
    import sys

    old = io.StringIO()
    monkeypatch.setattr(sys, "stderr", old)
    configure_logging("INFO")
    old.close()                                   # e.g. pytest's capture of an earlier test
    monkeypatch.setattr(sys, "stderr", sys.__stderr__)
    new = io.StringIO()
    monkeypatch.setattr(sys, "stderr", new)
    get_logger().warning("after close")           # must not raise "I/O operation on closed file"
    logging.getLogger("awan.test").warning("stdlib after close")
    assert "after close" in new.getvalue() and "stdlib after close" in new.getvalue()
