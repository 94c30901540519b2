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


def test_every_logger_goes_through_one_json_pipeline(capsys) -> None:
    import json

    configure_logging("INFO", fmt="json")
    get_logger("awan.test").info("placed", workload="w1", team="research")
    logging.getLogger("alembic.runtime.migration").info("Running upgrade %s -> %s", "0001", "0003")
    logging.getLogger("uvicorn.error").warning("stdlib warning with %d args", 1)
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.strip()]
    by_event = {d["event"]: d for d in lines}
    assert by_event["placed"]["workload"] == "w1" and by_event["placed"]["logger"] == "awan.test"
    alembic = by_event["Running upgrade 0001 -> 0003"]
    assert alembic["level"] == "info" and alembic["logger"] == "alembic.runtime.migration" and "timestamp" in alembic
    assert by_event["stdlib warning with 1 args"]["level"] == "warning"


def test_sdk_http_logging_is_off_unless_asked(capsys) -> None:
    configure_logging("INFO", fmt="json")
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").info("Request URL: 'https://x'")
    logging.getLogger("botocore.endpoint").info("Sending http request")
    assert capsys.readouterr().err == ""
    configure_logging("INFO", fmt="json", sdk_http=True)
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").info("Request URL: 'https://x'")
    assert "Request URL" in capsys.readouterr().err
    configure_logging("INFO", fmt="console")
    get_logger().info("console line", k=1)
    err = capsys.readouterr().err
    assert "console line" in err and not err.lstrip().startswith("{")


def test_bad_log_settings_are_one_line() -> None:
    import pytest

    with pytest.raises(ValueError, match="log format: 'xml'"):
        configure_logging("INFO", fmt="xml")
    with pytest.raises(ValueError, match="log level: 'LOUD'"):
        configure_logging("LOUD")
