"""`collectors dev token` and `collectors web openapi`, run through the CLI; tokens checked with PyJWT."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from openapi_spec_validator import validate
from typer.testing import CliRunner

from collectors.cli import app


def test_dev_token_is_signed_with_the_local_key_made_once(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["dev", "token", "--tenant", "pharma-7", "--data-dir", str(tmp_path), "--minutes", "5"])
    assert first.exit_code == 0, first.output
    pem = (tmp_path / "web-signing-key.pem").read_bytes()
    public = serialization.load_pem_private_key(pem, password=None).public_key()
    token = first.stdout.strip().splitlines()[-1]
    claims = jwt.decode(token, public, algorithms=["EdDSA"], audience="collectors-web", issuer="collectors-dev")  # type: ignore[arg-type]
    assert claims["tenant"] == "pharma-7" and claims["role"] == "pharmacy"
    assert 290 <= claims["exp"] - claims["iat"] <= 300

    operator = runner.invoke(app, ["dev", "token", "--role", "operator", "--data-dir", str(tmp_path)])
    assert operator.exit_code == 0
    assert (tmp_path / "web-signing-key.pem").read_bytes() == pem  # the same key, not a new one
    op_claims = jwt.decode(operator.stdout.strip(), public, algorithms=["EdDSA"], audience="collectors-web",  # type: ignore[arg-type]
                           issuer="collectors-dev")
    assert op_claims["role"] == "operator" and "tenant" not in op_claims

    assert runner.invoke(app, ["dev", "token", "--data-dir", str(tmp_path)]).exit_code == 2
    assert runner.invoke(app, ["dev", "token", "--tenant", "t", "--role", "admin",
                               "--data-dir", str(tmp_path)]).exit_code == 2


def test_web_openapi_writes_a_valid_document_and_no_key(tmp_path: Path) -> None:
    out = tmp_path / "openapi.json"
    result = CliRunner().invoke(app, ["web", "openapi", "-o", str(out)], env={"COLLECTORS_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    spec = json.loads(out.read_text())
    validate(spec)
    assert "/api/v1/accounts" in spec["paths"]
    assert not (tmp_path / "web-signing-key.pem").exists()
