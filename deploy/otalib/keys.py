"""Signing keys: one ed25519 key per TUF role, each a PEM file in the operator's KEYS folder.

The private keys never go inside the repository folder (that is what gets uploaded), are
created with mode 0600 in a 0700 folder, and are never printed.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import Root

from deploy.otalib.errors import OtaError

ROLES = ("root", "targets", "snapshot", "timestamp")


def key_file(keys: Path, role: str) -> Path:
    return keys / f"{role}.pem"


def refuse_keys_inside(keys: Path, repo: Path) -> None:
    """The repository folder is published as is: a private key inside it would be public."""
    keys_real, repo_real = keys.resolve(), repo.resolve()
    if keys_real == repo_real or keys_real.is_relative_to(repo_real):
        raise OtaError(f"{keys}: the keys folder must not be inside the repository {repo}")


def generate_keys(keys: Path) -> dict[str, CryptoSigner]:
    """New keys for every role; refuses if any key file already exists (never overwrites)."""
    existing = [key_file(keys, role) for role in ROLES if key_file(keys, role).exists()]
    if existing:
        raise OtaError(f"{existing[0]}: a key already exists; refusing to overwrite keys")
    keys.mkdir(mode=0o700, parents=True, exist_ok=True)
    signers = {}
    for role in ROLES:
        signer = CryptoSigner.generate_ed25519()
        _write_private(key_file(keys, role), signer.private_bytes)
        signers[role] = signer
    return signers


def _write_private(path: Path, pem: bytes) -> None:
    # O_EXCL: two operators (or a retry) can never overwrite a key someone already uses.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
        out.flush()
        os.fsync(out.fileno())


def load_signer(keys: Path, role: str, root: Root) -> CryptoSigner:
    """The signer for ``role``, checked against the keys the repository's root trusts."""
    path = key_file(keys, role)
    try:
        private = load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise OtaError(f"{path}: no {role} key (keys are made by `deploy/ota init-repo`)") from None
    except (OSError, ValueError, TypeError) as error:
        raise OtaError(f"{path}: cannot read the {role} key: {type(error).__name__}") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise OtaError(f"{path}: the {role} key is not an ed25519 key")
    public = SSlibKey.from_crypto(private.public_key())
    if public.keyid not in root.roles[role].keyids:
        raise OtaError(f"{path}: this is not the {role} key the repository's root trusts")
    return CryptoSigner(private, public)
