import io
import json
import logging

from shared.logging import REDACTED, configure_logging, forget_secret, get_logger, register_secret


def test_secret_keys_and_live_secrets_never_reach_the_log() -> None:
    out = io.StringIO()
    configure_logging("INFO", json=True, stream=out)
    register_secret("hunter2-pw")
    try:
        get_logger("t").info("login", password="p@ss", nested={"api_key": "k", "ok": "fine"},
                             detail="error with hunter2-pw inside")
        logging.getLogger("faststream.x").warning("stdlib %s", "hunter2-pw")
    finally:
        forget_secret("hunter2-pw")
    text = out.getvalue()
    assert "p@ss" not in text and "hunter2-pw" not in text and '"k"' not in text
    line = json.loads(text.splitlines()[0])
    assert line["password"] == REDACTED
    assert line["nested"] == {"api_key": REDACTED, "ok": "fine"}
    assert line["detail"] == f"error with {REDACTED} inside"
    assert REDACTED in text.splitlines()[1]


def test_stdlib_tracebacks_are_kept_and_redacted() -> None:
    out = io.StringIO()
    configure_logging("INFO", json=True, stream=out)
    register_secret("s3cr3t-value")
    try:
        raise RuntimeError("failed with s3cr3t-value")
    except RuntimeError:
        logging.getLogger("faststream.x").error("boom", exc_info=True)
    finally:
        forget_secret("s3cr3t-value")
    line = json.loads(out.getvalue())
    assert "RuntimeError" in line["exception"]
    assert "s3cr3t-value" not in out.getvalue()
