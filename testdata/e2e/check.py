#!/usr/bin/env python3
"""Recompute the sslm1 known-answer vectors in v1/ independently of the Go code,
with the Python `cryptography` package: the signed key bundle, the sslm1 stanza
(three X25519, HKDF-SHA256, ChaCha20-Poly1305) and, for the DM vector, the age
header MAC and payload. Exits 0 when every value matches, 1 otherwise, and 2
when `cryptography` is missing (make test then reports it as skipped)."""
import base64, hashlib, hmac, json, os, struct, sys

try:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
except ImportError:
    print("check.py: python3 has no 'cryptography' module")
    sys.exit(2)

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "v1")
failures = []

def expect(what, got, want):
    if got != want:
        failures.append(what)
        print(f"MISMATCH {what}:\n  got  {got}\n  want {want}")

def raw(pub):
    return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)

def x(hexstr):
    return X25519PrivateKey.from_private_bytes(bytes.fromhex(hexstr))

def hkdf(ikm, salt, info, n=32):
    return HKDF(algorithm=SHA256(), length=n, salt=salt, info=info).derive(ikm)

def lp(b):
    return struct.pack(">H", len(b)) + b

def identity_key(k):
    sig = raw(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(k["sig_seed"])).public_key())
    return sig + raw(x(k["dh_private"]).public_key())

def check_bundle(v):
    k = v["keys"]
    sk = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(k["sig_seed"]))
    user = k["name"].encode()
    body = (bytes([1]) + identity_key(k) + struct.pack(">I", k["spk_id"]) + raw(x(k["spk_private"]).public_key())
            + struct.pack(">Q", k["spk_expires"]) + bytes([len(user)]) + user)
    msg = b"sslm bundle v1\x00" + body
    expect("bundle signed message", msg.hex(), v["signed_message"])
    sig = sk.sign(msg)
    expect("bundle signature", sig.hex(), v["signature"])
    expect("bundle word", base64.urlsafe_b64encode(body + sig).rstrip(b"=").decode(), v["bundle"])

def check_stanza(v, name):
    a, b = v["sender"], v["recipient"]
    ek = x(v["ephemeral_private"])
    spk_b = x(b["spk_private"]).public_key()
    dh1 = x(a["dh_private"]).exchange(spk_b)
    dh2 = ek.exchange(x(b["dh_private"]).public_key())
    dh3 = ek.exchange(spk_b)
    ik_a, ik_b = identity_key(a), identity_key(b)
    info = (lp(b"sslm1") + lp(v["context"].encode()) + lp(a["name"].lower().encode())
            + lp(b["name"].lower().encode()) + lp(ik_a) + lp(ik_b) + struct.pack(">I", b["spk_id"]))
    salt = raw(ek.public_key()) + raw(spk_b)
    key = hkdf(dh1 + dh2 + dh3, salt, info)
    body = ChaCha20Poly1305(key).encrypt(bytes(12), bytes.fromhex(v["file_key"]), None)
    hint = hashlib.sha256(ik_a).digest()[:8]
    for what, got in [("dh1", dh1), ("dh2", dh2), ("dh3", dh3), ("hkdf_info", info), ("hkdf_salt", salt),
                      ("hkdf_output", key), ("hint", hint), ("body", body), ("identity_key", ik_a)]:
        expect(f"{name} {what}", got.hex(), v[what] if what != "identity_key" else a["identity_key"])
    b64 = lambda d: base64.b64encode(d).rstrip(b"=").decode()
    line = f"-> sslm1 {b64(raw(ek.public_key()))} {b['spk_id']:08x} {b64(hint)}\n{b64(body)}\n"
    expect(f"{name} stanza", line, v["stanza"])
    return line

def check_dm(v):
    line = check_stanza(v["stanza"], "dm stanza")
    data = bytes.fromhex(v["age_file"])
    expect("dm word", "e2e1." + base64.urlsafe_b64encode(data).rstrip(b"=").decode(), v["word"])
    fk = bytes.fromhex(v["stanza"]["file_key"])
    header = b"age-encryption.org/v1\n" + line.encode() + b"---"
    expect("dm header", data[:len(header)], header)
    mac_b64 = data[len(header) + 1:len(header) + 44]
    mac = hmac.new(hkdf(fk, b"", b"header"), header, hashlib.sha256).digest()
    expect("dm header MAC", base64.b64encode(mac).rstrip(b"=").decode(), mac_b64.decode())
    rest = data[len(header) + 45:]
    nonce, chunk = rest[:16], rest[16:]
    rec = ChaCha20Poly1305(hkdf(fk, nonce, b"payload")).decrypt(bytes(11) + b"\x01", chunk, None)
    expect("dm record", rec.hex(), v["record"])
    n = rec[38]
    blen = struct.unpack(">H", rec[39 + n:41 + n])[0]
    expect("dm body", rec[41 + n:41 + n + blen].decode(), v["body"])
    expect("dm seq", struct.unpack(">Q", rec[26:34])[0], v["seq"])

def load(name):
    with open(os.path.join(HERE, name)) as f:
        return json.load(f)

check_bundle(load("bundle.json"))
check_stanza(load("stanza.json"), "stanza")
check_dm(load("dm.json"))
if failures:
    print(f"check.py: {len(failures)} mismatches")
    sys.exit(1)
print("check.py: bundle, stanza and DM vectors recomputed independently: all match")
