"""A software WebAuthn authenticator for the passkey tests: it answers `navigator.credentials`
options as a browser and a platform authenticator would (`PublicKeyCredential.toJSON()`), with
P-256 keys (ES256), `none` attestation, resident credentials and a signature counter. The
structures (authenticator data, COSE keys, CBOR, client data) are python-fido2's; each answer
can be bent one way (another origin, no user verification, a broken signature) to check the
server refuses it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.webauthn import (
    AttestationObject,
    AttestedCredentialData,
    AuthenticatorData,
    CollectedClientData,
)

FLAGS = AuthenticatorData.FLAG


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Credential:
    id: bytes
    key: ec.EllipticCurvePrivateKey
    user_handle: bytes
    rp_id: str
    counter: int = 0


@dataclass
class SoftAuthenticator:
    origin: str
    backup_eligible: bool = False
    credentials: list[Credential] = field(default_factory=list)

    @property
    def rp_id(self) -> str:
        return urlsplit(self.origin).hostname

    def _flags(self, user_verified: bool) -> FLAGS:
        flags = FLAGS.UP
        if user_verified:
            flags |= FLAGS.UV
        if self.backup_eligible:
            flags |= FLAGS.BE
        return flags

    def create(self, options: dict, *, origin: str | None = None) -> str:
        """`navigator.credentials.create({publicKey})` for `options` ({"publicKey": …})."""
        public_key = options["publicKey"]
        rp_id = public_key["rp"]["id"]
        assert rp_id == self.rp_id, f"the RP ID {rp_id} is not this origin's"
        excluded = {unb64url(c["id"]) for c in public_key.get("excludeCredentials") or []}
        assert not excluded & {c.id for c in self.credentials}, "InvalidStateError: excluded"
        key = ec.generate_private_key(ec.SECP256R1())
        credential = Credential(os.urandom(32), key, unb64url(public_key["user"]["id"]), rp_id)
        attested = AttestedCredentialData.create(
            b"\0" * 16, credential.id, ES256.from_cryptography_key(key.public_key()))
        auth_data = AuthenticatorData.create(
            hashlib.sha256(rp_id.encode()).digest(),
            self._flags(True) | FLAGS.AT,
            credential.counter,
            bytes(attested),
        )
        client_data = CollectedClientData.create(
            "webauthn.create", unb64url(public_key["challenge"]), origin or self.origin)
        attestation = AttestationObject.create("none", auth_data, {})
        self.credentials.append(credential)
        return json.dumps({
            "id": b64url(credential.id),
            "rawId": b64url(credential.id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64url(bytes(client_data)),
                "attestationObject": b64url(bytes(attestation)),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        })

    def get(self, options: dict, *, origin: str | None = None, user_verified: bool = True,
            break_signature: bool = False, counter: int | None = None) -> str:
        """`navigator.credentials.get({publicKey})`: the first credential of this RP that the
        options allow (any, for a discoverable request)."""
        public_key = options["publicKey"]
        rp_id = public_key.get("rpId") or self.rp_id
        allowed = {unb64url(c["id"]) for c in public_key.get("allowCredentials") or []}
        candidates = [c for c in self.credentials
                      if c.rp_id == rp_id and (not allowed or c.id in allowed)]
        assert candidates, "NotAllowedError: no credential for these options"
        credential = candidates[0]
        credential.counter = credential.counter + 1 if counter is None else counter
        auth_data = AuthenticatorData.create(
            hashlib.sha256(rp_id.encode()).digest(), self._flags(user_verified), credential.counter)
        client_data = CollectedClientData.create(
            "webauthn.get", unb64url(public_key["challenge"]), origin or self.origin)
        signed = bytes(auth_data) + hashlib.sha256(bytes(client_data)).digest()
        signature = credential.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        if break_signature:
            signature = credential.key.sign(signed + b"!", ec.ECDSA(hashes.SHA256()))
        return json.dumps({
            "id": b64url(credential.id),
            "rawId": b64url(credential.id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64url(bytes(client_data)),
                "authenticatorData": b64url(bytes(auth_data)),
                "signature": b64url(signature),
                "userHandle": b64url(credential.user_handle),
            },
            "clientExtensionResults": {},
        })
