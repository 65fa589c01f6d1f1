"""Test doubles for the evidence reader: an ES256 certificate chain, C2PA signing, images with metadata."""

from __future__ import annotations

import datetime
import io
from dataclasses import dataclass

import c2pa
import cv2
import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


@dataclass(frozen=True)
class Chain:
    certs: bytes   # leaf then root, PEM (what the signer embeds)
    key: bytes     # the leaf's private key, PEM
    root: bytes    # the root alone: what an operator would configure as a trust anchor


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{common_name} Inc")])


def _usage(**allowed: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{name: allowed.get(name, False) for name in names})


def make_chain(signer: str) -> Chain:
    """A root CA and an ES256 leaf with the key usage and EKU the C2PA certificate profile asks for."""
    now = datetime.datetime.now(datetime.timezone.utc)
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def builder(subject: x509.Name, issuer: x509.Name, key, days: int) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=days))
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))

    root = (builder(_name(f"{signer} Root CA"), _name(f"{signer} Root CA"), root_key, 3650)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(key_cert_sign=True, crl_sign=True), critical=True)
            .sign(root_key, hashes.SHA256()))
    leaf = (builder(_name(signer), root.subject, leaf_key, 365)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return Chain(certs=leaf.public_bytes(pem) + root.public_bytes(pem),
                 key=leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
                 root=root.public_bytes(pem))


def sign(data: bytes, mime: str, chain: Chain, actions: list[dict], generator: str = "TestGen",
         ingredient: bytes | None = None) -> bytes:
    """`data` with an embedded C2PA manifest (no thumbnail, no timestamp authority: tests run offline).

    ``ingredient``: a signed file of the same type, added as the parent (opened, then `actions`) whose
    manifest the store carries.
    """
    if ingredient is not None:
        actions = [{"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent"]}}] + actions
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    definition = {"claim_generator_info": [{"name": generator, "version": "1.0"}], "title": "test", "format": mime,
                  "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}]}
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain.certs, chain.key, None))
    with c2pa.Builder(definition, context) as builder:
        if ingredient is not None:
            builder.add_ingredient({"title": "parent", "relationship": "parentOf", "label": "parent"}, mime, io.BytesIO(ingredient))
        out = io.BytesIO()
        builder.sign(signer, mime, io.BytesIO(data), out)
    return out.getvalue()


def created(source_type: str, agent: str | None = None) -> dict:
    action = {"action": "c2pa.created", "digitalSourceType": IPTC + source_type}
    return action | ({"softwareAgent": {"name": agent}} if agent else {})


def textured(height: int = 512, width: int = 512, seed: int = 0) -> np.ndarray:
    """A photo-like RGB image: blurred noise with full-range contrast (uint8, HxWx3)."""
    noise = (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 3).astype(int) * 2 - 128, 0, 255).astype(np.uint8)


def encode(rgb: np.ndarray, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, fmt, **params)
    return buffer.getvalue()


def xmp_packet(fields: str) -> bytes:
    """An XMP packet whose rdf:Description carries `fields` (attributes or child elements, Iptc4xmpExt and xmp)."""
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
            f'xmlns:xmp="http://ns.adobe.com/xap/1.0/" {fields}</rdf:Description></rdf:RDF></x:xmpmeta>'
            '<?xpacket end="w"?>').encode()
