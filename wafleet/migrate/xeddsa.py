"""Verifying XEdDSA signatures (Signal's signatures made with X25519 keys), with ``cryptography``.

An XEdDSA signature is an Ed25519 signature under the Edwards form of the X25519 public key:
``y = (u - 1) / (u + 1) mod p``, with the sign bit of the Edwards point carried in the top bit
of the signature's last byte (libsignal-go ``ecc/SignCurve25519.go``, curve25519-js alike). So
verifying is: convert the key, move the bit, and run a standard Ed25519 verification.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

P = 2**255 - 19


def edwards_public(montgomery: bytes, sign_bit: int) -> bytes:
    u = int.from_bytes(montgomery, "little") & ((1 << 255) - 1)
    y = (u - 1) * pow(u + 1, P - 2, P) % P
    encoded = bytearray(y.to_bytes(32, "little"))
    encoded[31] = (encoded[31] & 0x7F) | (sign_bit & 0x80)
    return bytes(encoded)


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` (64 bytes) is ``public``'s (32-byte X25519) XEdDSA over ``message``."""
    if len(public) != 32 or len(signature) != 64:
        return False
    ed_public = edwards_public(public, signature[63])
    plain = signature[:63] + bytes([signature[63] & 0x7F])
    try:
        Ed25519PublicKey.from_public_bytes(ed_public).verify(plain, message)
    except (InvalidSignature, ValueError):
        return False
    return True
