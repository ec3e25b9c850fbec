"""Credentials at rest (§6): AES-256-GCM, tenant and account bound as associated data, key ids.

Keys come from ``COLLECTORS_CREDENTIAL_KEYS`` ("kid:base64,kid:base64") or a secret file of the
same entries one per line; the first key encrypts, all of them decrypt, so a key can be retired
once ``collectors keys rotate`` has re-encrypted everything under the newest one.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class KeyringError(ValueError):
    """The key configuration is missing or malformed (message never holds key material)."""


class DecryptionFailed(Exception):
    """Wrong key, tampered ciphertext, or a ciphertext copied from another account."""


@dataclass(frozen=True)
class Sealed:
    kid: str
    nonce: bytes
    ciphertext: bytes

    def to_doc(self) -> dict[str, str]:
        return {
            "kid": self.kid,
            "nonce": base64.b64encode(self.nonce).decode(),
            "ct": base64.b64encode(self.ciphertext).decode(),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, str]) -> Sealed:
        return cls(doc["kid"], base64.b64decode(doc["nonce"]), base64.b64decode(doc["ct"]))


def associated_data(tenant_id: str, account_id: str) -> bytes:
    return f"collectors/credential/v1/{tenant_id}/{account_id}".encode()


class Keyring:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise KeyringError("no credential key configured")
        for kid, key in keys:
            if not KID_PATTERN.match(kid):
                raise KeyringError(f"invalid key id {kid!r}")
            if len(key) != 32:
                raise KeyringError(f"key {kid!r} must be 32 bytes (AES-256), got {len(key)}")
        self._keys = dict(keys)
        self.current_kid = keys[0][0]

    @property
    def kids(self) -> list[str]:
        return list(self._keys)

    def seal(self, plaintext: str, tenant_id: str, account_id: str) -> Sealed:
        nonce = os.urandom(12)
        ct = AESGCM(self._keys[self.current_kid]).encrypt(
            nonce, plaintext.encode(), associated_data(tenant_id, account_id)
        )
        return Sealed(self.current_kid, nonce, ct)

    def open(self, sealed: Sealed, tenant_id: str, account_id: str) -> str:
        key = self._keys.get(sealed.kid)
        if key is None:
            raise DecryptionFailed(f"key {sealed.kid!r} is not configured")
        try:
            return AESGCM(key).decrypt(
                sealed.nonce, sealed.ciphertext, associated_data(tenant_id, account_id)
            ).decode()
        except InvalidTag as exc:
            raise DecryptionFailed("ciphertext does not authenticate") from exc

    @classmethod
    def parse(cls, text: str) -> Keyring:
        keys: list[tuple[str, bytes]] = []
        lines = (line.split("#", 1)[0] for line in text.splitlines())
        for raw in ",".join(lines).split(","):
            entry = raw.strip()
            if not entry:
                continue
            kid, sep, b64 = entry.partition(":")
            if not sep:
                raise KeyringError("each key entry must look like 'kid:base64key'")
            try:
                keys.append((kid.strip(), base64.b64decode(b64.strip(), validate=True)))
            except ValueError as exc:
                raise KeyringError(f"key {kid.strip()!r} is not valid base64") from exc
        return cls(keys)

    @classmethod
    def load(cls, keys: str | None, keys_file: Path | None) -> Keyring:
        if keys:
            return cls.parse(keys)
        if keys_file:
            if not keys_file.exists():
                raise KeyringError(f"credential key file {keys_file} does not exist")
            return cls.parse(keys_file.read_text())
        raise KeyringError(
            "no credential key: set COLLECTORS_CREDENTIAL_KEYS or COLLECTORS_CREDENTIAL_KEYS_FILE"
        )


def new_key_entry(kid: str | None = None) -> str:
    kid = kid or f"k{secrets.token_hex(4)}"
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


def ensure_key_file(path: Path) -> bool:
    """Create a key file with one fresh key if none exists; return True when it was created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# collectors credential keys: the first line encrypts, all decrypt\n")
        fh.write(new_key_entry() + "\n")
    return True
