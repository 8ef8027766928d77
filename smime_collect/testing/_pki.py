"""A public test PKI: roots, intermediates and S/MIME end entities made with cryptography.

Everything is generated in memory and cached per process, so a test suite pays for each key once.
The shapes mirror what Sectigo hands out (``docs/explanation/formats.md``, "Chains from Sectigo"):

* ``TestCA.create()`` - a self-signed root and one intermediate (EC P-256 by default: fast);
  ``intermediates=2`` gives a two-level hierarchy below the root.
* ``TestCA.issue_smime()`` - an S/MIME end entity: ``cA=False``, EKU emailProtection, an rfc822Name
  SAN, SKI/AKI, valid from 00:00:00 UTC to 23:59:59 UTC like Sectigo's certificates.
* ``TestCA.cross_certificate(other)`` - the same subject and key as this CA's root, issued by
  another root (how "USERTrust RSA Certification Authority" is cross-signed by "AAA Certificate
  Services").
* ``root_hash="sha1"`` - a SHA-1 RSA self-signed root like "AAA Certificate Services" (with an
  SKI and no AKI, as that root has);
  ``root_v1=True`` - an old X.509 v1 root with no extensions at all. cryptography refuses to build
  either, so both are re-signed here at the DER level (the TBS is rewritten, then signed directly).
* ``TestCA.create_real_shaped()`` - an RSA-4096 root with an SKI and no AKI over an RSA-2048
  intermediate, the shape of Sectigo's USERTrust S/MIME hierarchy.

Example::

    ca = TestCA.create()
    issued = ca.issue_smime("alice@example.com")
    issued.certificates()   # (end entity, intermediate, root)
"""

import datetime as _dt
import functools
from typing import Literal

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["IssuedChain", "PrivateKey", "TestCA", "certificate_builder", "key_usage"]

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# CA certificates get a fixed, generous validity so cached objects never expire during a run.
_CA_NOT_BEFORE = _dt.datetime(2020, 1, 1, tzinfo=_dt.UTC)
_CA_NOT_AFTER = _dt.datetime(2045, 12, 31, 23, 59, 59, tzinfo=_dt.UTC)

# DER AlgorithmIdentifiers (RFC 4055 section 5 / RFC 3279 section 2.2.1): sha256WithRSAEncryption
# and sha1WithRSAEncryption differ in the last OID byte only, so swapping them keeps every length.
_SHA256_RSA_ALGID = bytes.fromhex("300d06092a864886f70d01010b0500")
_SHA1_RSA_ALGID = bytes.fromhex("300d06092a864886f70d0101050500")
# "version [0] EXPLICIT Version DEFAULT v1" holding INTEGER 2 (v3), RFC 5280 section 4.1.
_V3_VERSION_FIELD = bytes.fromhex("a003020102")


def _new_key(key_type: Literal["ec", "rsa"]) -> PrivateKey:
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str, organisation: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "GB")]
    if organisation:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def certificate_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: CertificatePublicKeyTypes,
    not_before: _dt.datetime,
    not_after: _dt.datetime,
) -> x509.CertificateBuilder:
    """Start a certificate: the names, the key, a random serial number and the validity.

    Args:
        subject: The subject name.
        issuer: The issuer's name.
        public_key: The subject's public key.
        not_before: The start of the validity period.
        not_after: Its end.

    Returns:
        A builder to add extensions to and sign.
    """
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_agreement: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    """A keyUsage extension (RFC 5280 section 4.2.1.3) with only the bits named set.

    Args:
        digital_signature: digitalSignature.
        key_encipherment: keyEncipherment (RSA end entities).
        key_agreement: keyAgreement (EC end entities).
        key_cert_sign: keyCertSign (CAs).
        crl_sign: cRLSign (CAs).

    Returns:
        The extension value.
    """
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=key_agreement,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _ca_builder(
    subject: x509.Name,
    issuer: x509.Name,
    subject_key: PrivateKey,
    issuer_key: PrivateKey,
    path_length: int | None,
    *,
    authority_key_identifier: bool = True,
) -> x509.CertificateBuilder:
    public_key = subject_key.public_key()
    builder = (
        certificate_builder(subject, issuer, public_key, _CA_NOT_BEFORE, _CA_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if not authority_key_identifier:
        return builder
    return builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
        critical=False,
    )


def _der_header(tag: int, length: int) -> bytes:
    if length < 0x80:
        return bytes((tag, length))
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big")


def _der_content(element: bytes) -> bytes:
    """Content octets of one DER element with a definite length (trusted, self-made input)."""
    first = element[1]
    if first < 0x80:
        return element[2 : 2 + first]
    size = first & 0x7F
    length = int.from_bytes(element[2 : 2 + size], "big")
    return element[2 + size : 2 + size + length]


def _resign_legacy(
    certificate: x509.Certificate, key: PrivateKey, *, sha1: bool, v1: bool
) -> x509.Certificate:
    """Rewrite a self-signed certificate as SHA-1 signed and/or X.509 v1, and sign it again."""
    tbs = _der_content(certificate.tbs_certificate_bytes)
    # Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }: the
    # AlgorithmIdentifier follows the TBS and is short (one length byte).
    body = _der_content(certificate.public_bytes(Encoding.DER))
    start = len(certificate.tbs_certificate_bytes)
    algorithm_id = body[start : start + 2 + body[start + 1]]
    if v1:
        if not tbs.startswith(
            _V3_VERSION_FIELD
        ):  # pragma: no cover - cryptography always writes v3
            raise ValueError("expected a v3 TBSCertificate")
        tbs = tbs[len(_V3_VERSION_FIELD) :]
    hash_algorithm: hashes.HashAlgorithm = hashes.SHA256()
    if sha1:
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("a SHA-1 root needs key_type='rsa'")
        tbs = tbs.replace(_SHA256_RSA_ALGID, _SHA1_RSA_ALGID, 1)
        algorithm_id = _SHA1_RSA_ALGID
        hash_algorithm = hashes.SHA1()  # noqa: S303 - the legacy root under test, on purpose
    tbs_der = _der_header(0x30, len(tbs)) + tbs
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(tbs_der, padding.PKCS1v15(), hash_algorithm)
    else:
        signature = key.sign(tbs_der, ec.ECDSA(hash_algorithm))
    bit_string = _der_header(0x03, len(signature) + 1) + b"\x00" + signature
    body = tbs_der + algorithm_id + bit_string
    return x509.load_der_x509_certificate(_der_header(0x30, len(body)) + body)


@attrs.frozen
class IssuedChain:
    """An end entity with the chain that issued it.

    Attributes:
        root: The self-signed root.
        intermediates: The intermediate CAs, from the one that issued the end entity upwards.
        end_entity: The S/MIME certificate.
        end_entity_key: Its private key.
    """

    root: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    end_entity: x509.Certificate
    end_entity_key: PrivateKey = attrs.field(repr=False)

    def certificates(self) -> tuple[x509.Certificate, ...]:
        """Every certificate: end entity, intermediates (upwards), root.

        Returns:
            The certificates in issuing order.
        """
        return (self.end_entity, *self.intermediates, self.root)


@attrs.frozen(eq=False)
class TestCA:
    """A root, zero or more intermediates, and the key that issues end entities.

    Build with :meth:`TestCA.create` (cached: the same arguments give the same object).

    Attributes:
        name: The label used in every subject.
        root: The self-signed root certificate.
        root_key: The root's private key.
        intermediates: The intermediate CAs, from the issuing one upwards.
        issuing_key: The key of the lowest CA (the root's when there is no intermediate).
    """

    __test__ = False  # not a pytest test class, whatever its name says

    name: str
    root: x509.Certificate
    root_key: PrivateKey = attrs.field(repr=False)
    intermediates: tuple[x509.Certificate, ...]
    issuing_key: PrivateKey = attrs.field(repr=False)

    @classmethod
    def create(
        cls,
        name: str = "smime_collect Test",
        *,
        key_type: Literal["ec", "rsa"] = "ec",
        intermediates: int = 1,
        root_hash: Literal["sha256", "sha1"] = "sha256",
        root_v1: bool = False,
    ) -> "TestCA":
        """A test CA, created once per distinct set of arguments.

        Args:
            name: Label for the subjects ("<name> Root CA", "<name> Email CA 1", ...).
            key_type: ``"ec"`` (P-256, fast) or ``"rsa"`` (2048 bits).
            intermediates: How many intermediate CAs below the root (0 issues from the root).
            root_hash: ``"sha1"`` makes a SHA-1 RSA self-signed root (needs ``key_type="rsa"``).
            root_v1: Make the root an X.509 v1 certificate without any extension.

        Returns:
            The CA.

        Raises:
            ValueError: ``root_hash="sha1"`` with an EC key, or a negative ``intermediates``.
        """
        if intermediates < 0:
            raise ValueError("intermediates must be >= 0")
        if root_hash == "sha1" and key_type != "rsa":
            raise ValueError("a SHA-1 root needs key_type='rsa'")
        return _create_ca(name, key_type, intermediates, root_hash, root_v1)

    @property
    def issuer(self) -> x509.Certificate:
        """The certificate that issues end entities (lowest intermediate, or the root)."""
        return self.intermediates[0] if self.intermediates else self.root

    def ca_certificates(self) -> tuple[x509.Certificate, ...]:
        """The intermediates (upwards) then the root.

        Returns:
            Every CA certificate of this hierarchy.
        """
        return (*self.intermediates, self.root)

    def issue_smime(
        self,
        email: str,
        *,
        common_name: str | None = None,
        not_before: _dt.datetime | None = None,
        days: int = 365,
        key: PrivateKey | None = None,
    ) -> "IssuedChain":
        """Issue (or fetch from the cache) an S/MIME end-entity certificate.

        Args:
            email: The rfc822Name in the SAN (and the default common name).
            common_name: The subject CN; defaults to ``email``.
            not_before: The first valid day (its time is dropped: validity starts 00:00:00 UTC);
                defaults to today. A naive datetime is taken as UTC.
            days: Validity length; ``not_after`` is 23:59:59 UTC that many days later.
            key: The end entity's private key, as a user who placed the order made it (its
                public key goes in the certificate); default: a new key like the CA's.

        Returns:
            The end entity, its key and the chain above it.
        """
        if not_before is None:
            not_before = _dt.datetime.now(_dt.UTC)
        elif not_before.tzinfo is None:
            not_before = not_before.replace(tzinfo=_dt.UTC)
        start = _dt.datetime.combine(
            not_before.astimezone(_dt.UTC).date(), _dt.time(0, 0, 0), tzinfo=_dt.UTC
        )
        return _issue_smime(self, email, common_name or email, start, days, given_key=key)

    def cross_certificate(self, issuer: "TestCA") -> x509.Certificate:
        """This CA's root subject and key, issued by another CA's root (a cross-certificate).

        Args:
            issuer: The CA whose root signs the cross-certificate.

        Returns:
            A CA certificate that is not self-signed but shares this root's subject and key.
        """
        return _cross_certificate(self, issuer)

    @classmethod
    def create_real_shaped(
        cls, name: str = "Real-shaped", *, root_key_size: int = 4096
    ) -> "TestCA":
        """A hierarchy shaped like Sectigo's S/MIME one, created once per distinct arguments.

        Like "USERTrust RSA Certification Authority", the root is RSA (4096 bits by default),
        signed with SHA-384, and carries a subject key identifier but no authority key
        identifier, so telling that it is self-signed takes a signature check.  One RSA-2048
        intermediate (SKI and AKI) issues RSA-2048 end entities, like "Sectigo RSA Client
        Authentication and Secure Email CA".

        Args:
            name: Label for the subjects.
            root_key_size: The root's RSA key size (tests may pass 2048 to save time).

        Returns:
            The CA.
        """
        return _create_real_shaped_ca(name, root_key_size)


@functools.lru_cache(maxsize=64)
def _create_ca(
    name: str,
    key_type: Literal["ec", "rsa"],
    intermediate_count: int,
    root_hash: Literal["sha256", "sha1"],
    root_v1: bool,
) -> TestCA:
    root_key = _new_key(key_type)
    root_name = _name(f"{name} Root CA", name)
    # Like "AAA Certificate Services", the SHA-1 root carries an SKI but no AKI, so telling that
    # it is self-signed takes a signature check.
    root = _ca_builder(
        root_name, root_name, root_key, root_key, None, authority_key_identifier=root_hash != "sha1"
    ).sign(root_key, hashes.SHA256())
    if root_hash == "sha1" or root_v1:
        if root_v1:
            # A v1 certificate carries no extensions (RFC 5280 section 4.1.2.9).
            root = certificate_builder(
                root_name, root_name, root_key.public_key(), _CA_NOT_BEFORE, _CA_NOT_AFTER
            ).sign(root_key, hashes.SHA256())
        root = _resign_legacy(root, root_key, sha1=root_hash == "sha1", v1=root_v1)
    issuer_cert, issuer_key = root, root_key
    chain: list[x509.Certificate] = []
    for level in range(intermediate_count, 0, -1):
        key = _new_key(key_type)
        subject = _name(f"{name} Email CA {level}", name)
        cert = _ca_builder(subject, issuer_cert.subject, key, issuer_key, level - 1).sign(
            issuer_key, hashes.SHA256()
        )
        chain.insert(0, cert)
        issuer_cert, issuer_key = cert, key
    return TestCA(
        name=name,
        root=root,
        root_key=root_key,
        intermediates=tuple(chain),
        issuing_key=issuer_key,
    )


@functools.lru_cache(maxsize=16)
def _create_real_shaped_ca(name: str, root_key_size: int) -> TestCA:
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=root_key_size)
    root_name = _name(f"{name} Root CA", name)
    root = _ca_builder(
        root_name, root_name, root_key, root_key, None, authority_key_identifier=False
    ).sign(root_key, hashes.SHA384())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = _name(f"{name} Email CA", name)
    intermediate = _ca_builder(subject, root_name, key, root_key, 0).sign(root_key, hashes.SHA384())
    return TestCA(
        name=name, root=root, root_key=root_key, intermediates=(intermediate,), issuing_key=key
    )


@functools.lru_cache(maxsize=1024)
def _issue_smime(
    ca: TestCA,
    email: str,
    common_name: str,
    not_before: _dt.datetime,
    days: int,
    *,
    given_key: PrivateKey | None,
) -> IssuedChain:
    key: PrivateKey = given_key or (
        ec.generate_private_key(ec.SECP256R1())
        if isinstance(ca.issuing_key, ec.EllipticCurvePrivateKey)
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    is_ec = isinstance(key, ec.EllipticCurvePrivateKey)
    not_after = _dt.datetime.combine(
        not_before.date() + _dt.timedelta(days=days), _dt.time(23, 59, 59), tzinfo=_dt.UTC
    )
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, email),
        ]
    )
    cert = (
        certificate_builder(subject, ca.issuer.subject, key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            key_usage(digital_signature=True, key_encipherment=not is_ec, key_agreement=is_ec),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.issuing_key.public_key()),
            critical=False,
        )
        .sign(ca.issuing_key, hashes.SHA256())
    )
    return IssuedChain(
        root=ca.root, intermediates=ca.intermediates, end_entity=cert, end_entity_key=key
    )


@functools.lru_cache(maxsize=64)
def _cross_certificate(subject_ca: TestCA, issuer: TestCA) -> x509.Certificate:
    builder = _ca_builder(
        subject_ca.root.subject, issuer.root.subject, subject_ca.root_key, issuer.root_key, None
    )
    return builder.sign(issuer.root_key, hashes.SHA256())
