import pytest

from services.accounts.crypto import (
    DecryptionFailed,
    Keyring,
    KeyringError,
    Sealed,
    ensure_key_file,
    new_key_entry,
)


def test_round_trip_binds_tenant_and_account() -> None:
    ring = Keyring.parse(new_key_entry("k1"))
    sealed = ring.seal("s3cret-pw", "t1", "a1")
    assert sealed.kid == "k1"
    assert b"s3cret-pw" not in sealed.ciphertext
    assert ring.open(Sealed.from_doc(sealed.to_doc()), "t1", "a1") == "s3cret-pw"
    # A ciphertext copied onto another account or tenant must not decrypt.
    with pytest.raises(DecryptionFailed):
        ring.open(sealed, "t1", "a2")
    with pytest.raises(DecryptionFailed):
        ring.open(sealed, "t2", "a1")


def test_nonces_differ_for_the_same_password() -> None:
    ring = Keyring.parse(new_key_entry("k1"))
    assert ring.seal("pw", "t", "a").nonce != ring.seal("pw", "t", "a").nonce


def test_first_key_encrypts_all_keys_decrypt() -> None:
    old, new = new_key_entry("old"), new_key_entry("new")
    sealed_old = Keyring.parse(old).seal("pw", "t", "a")
    ring = Keyring.parse(f"{new},{old}")
    assert ring.current_kid == "new"
    assert ring.open(sealed_old, "t", "a") == "pw"
    with pytest.raises(DecryptionFailed, match="not configured"):
        Keyring.parse(new).open(sealed_old, "t", "a")


def test_tampered_ciphertext_fails() -> None:
    ring = Keyring.parse(new_key_entry("k1"))
    sealed = ring.seal("pw", "t", "a")
    bad = Sealed(sealed.kid, sealed.nonce, bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:])
    with pytest.raises(DecryptionFailed):
        ring.open(bad, "t", "a")


@pytest.mark.parametrize("text", ["", "nocolon", "k1:not-base64!!", "k1:YWJj", "bad id:" + "A" * 44])
def test_malformed_key_configuration_is_refused(text: str) -> None:
    with pytest.raises(KeyringError):
        Keyring.parse(text)


def test_key_file_created_once_with_private_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "keys"
    assert ensure_key_file(path) is True
    assert ensure_key_file(path) is False
    assert path.stat().st_mode & 0o777 == 0o600
    ring = Keyring.load(None, path)
    assert ring.open(ring.seal("x", "t", "a"), "t", "a") == "x"
    with pytest.raises(KeyringError, match="does not exist"):
        Keyring.load(None, tmp_path / "missing")
    with pytest.raises(KeyringError, match="no credential key"):
        Keyring.load(None, None)
