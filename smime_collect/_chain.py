"""SANS-I/O: sort a set of certificates into end entity, intermediates and roots.

Classification never trusts input order: a PKCS#7 SET is sorted by its DER bytes and the
endpoint's own sample lists the root first (DOMAIN.md, "The response").  It follows content only:

* **link** parent -> child: ``child.issuer == parent.subject`` (compared as DER bytes) and, when
  both are present, the child's authority key identifier equals the parent's subject key
  identifier.  When names and key identifiers leave several candidate parents and some lack key
  identifiers, signatures decide between them.
* **root**: self-issued *and* self-signed.  When both key identifiers are present they decide
  (a self-signature is made by the key the AKI names, so AKI == SKI); otherwise the signature is
  checked directly with the public key, which also accepts SHA-1 RSA self-signatures that
  ``verify_directly_issued_by`` refuses (a signature no library can check any more, MD2 on a
  1990s v1 root, leaves the names to decide).  Self-signed wins over everything else: an old v1 root
  without basicConstraints is a root.  A cross-certificate (a root's subject and key, issued by
  another root) is not self-signed, so it is an intermediate.
* **end entity**: not a CA (basicConstraints absent or ``cA=False``) and the issuer of nothing
  else in the set.  None for a CA bundle.
* **intermediates**: every other certificate.  A certificate without basicConstraints that
  issued another certificate in the set (an old v1 CA) is one; so is one that links to nothing,
  when it is a CA.

Order of the intermediates (and of the roots): by the number of links from the end entity
(shortest path first).  Certificates the end entity does not reach follow, ordered the same way
from the lowest certificates of their own branch; extra end-entity certificates (a set should hold
one) come last, so nothing is silently dropped.  **Tie-break** when two paths exist - a root and its
cross-certificate share subject and key, so both issued the intermediate below them: at equal
distance, the certificate with the later ``notBefore`` comes first, then the one with the smaller
SHA-256 fingerprint.  The same rule picks the end entity among several candidates, after
preferring one that links to the rest of the set.

This module does no I/O.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

from ._exceptions import ChainError, InvalidRequestError

__all__ = ["CertificateChain", "classify"]

_DER = serialization.Encoding.DER
_PEM = serialization.Encoding.PEM

# OID contents (RFC 5280 section 4.2.1): basicConstraints, subjectKeyIdentifier,
# authorityKeyIdentifier, each with its OBJECT IDENTIFIER header.
_EXTENSION_KINDS = {
    b"\x06\x03\x55\x1d\x13": 0,
    b"\x06\x03\x55\x1d\x0e": 1,
    b"\x06\x03\x55\x1d\x23": 2,
}


def _header(der: bytes, pos: int) -> tuple[int, int, int]:
    # Only ever called on DER that cryptography has already parsed as a certificate, so the
    # structure is known to be sound; IndexError/ValueError are still caught by the caller.
    first = der[pos + 1]
    if first < 0x80:
        return der[pos], pos + 2, pos + 2 + first
    start = pos + 2 + (first & 0x7F)
    return der[pos], start, start + int.from_bytes(der[pos + 2 : start], "big")


class _Facts(NamedTuple):
    """What classification needs from one certificate, read once.

    A NamedTuple rather than an attrs class: it is built for every certificate on the hot path of
    ``load_certificates`` and tuple construction is several times cheaper.  Instances are told
    apart by identity (``id``), never by value.
    """

    certificate: x509.Certificate
    der: bytes
    issuer: bytes
    subject: bytes
    ca: bool | None  # None: no basicConstraints extension
    ski: bytes | None
    aki: bytes | None

    @classmethod
    def read(cls, certificate: x509.Certificate, der: bytes) -> _Facts:
        """Read names and the three extensions straight from the DER (cheap), or fall back."""
        cached = _CA_FACTS.get(der)
        if cached is not None:
            return cached
        try:
            facts = cls._from_der(certificate, der)
        except (IndexError, ValueError):  # pragma: no cover - cryptography parsed it already
            facts = cls._from_objects(certificate, der)
        if facts.ca:
            _remember_ca(facts)
        return facts

    @classmethod
    def _from_der(cls, certificate: x509.Certificate, der: bytes) -> _Facts:
        # Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serial,
        # signature, issuer, validity, subject, subjectPublicKeyInfo, [1], [2], [3] extensions } }
        # This runs for every certificate loaded, so short-form lengths are decoded inline.
        _, pos, _ = _header(der, 0)
        _, pos, tbs_end = _header(der, pos)
        if der[pos] == 0xA0:
            pos += 2 + der[pos + 1]  # [0] EXPLICIT INTEGER: always short
        for _skipped in range(2):  # serialNumber, signature AlgorithmIdentifier
            first = der[pos + 1]
            pos = pos + 2 + first if first < 0x80 else _header(der, pos)[2]
        issuer_end = _header(der, pos)[2]
        issuer = der[pos:issuer_end]
        first = der[issuer_end + 1]  # validity
        pos = issuer_end + 2 + first if first < 0x80 else _header(der, issuer_end)[2]
        subject_end = _header(der, pos)[2]
        subject = der[pos:subject_end]
        pos = _header(der, subject_end)[2]  # subjectPublicKeyInfo
        ca: bool | None = None
        ski = aki = None
        kinds = _EXTENSION_KINDS
        while pos < tbs_end:
            tag, start, pos = _header(der, pos)
            if tag != 0xA3:
                continue
            _, ext_pos, ext_end = _header(der, start)
            while ext_pos < ext_end:
                first = der[ext_pos + 1]
                if first < 0x80:
                    oid_pos, ext_pos = ext_pos + 2, ext_pos + 2 + first
                else:
                    _, oid_pos, ext_pos = _header(der, ext_pos)
                kind = kinds.get(der[oid_pos : oid_pos + 5])
                if kind is None:
                    continue
                tag, value, value_end = _header(der, oid_pos + 5)
                if tag == 0x01:  # critical BOOLEAN
                    tag, value, value_end = _header(der, value_end)
                _, inner, inner_end = _header(der, value)  # the OCTET STRING's content
                if kind == 0:  # BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, ... }
                    ca = inner < inner_end and der[inner] == 0x01 and der[inner + 2] != 0
                elif kind == 1:  # SubjectKeyIdentifier ::= OCTET STRING
                    ski = der[inner:inner_end]
                elif inner < inner_end and der[inner] == 0x80:  # AKI keyIdentifier [0]
                    _, key_start, key_end = _header(der, inner)
                    aki = der[key_start:key_end]
        return cls(certificate, der, issuer, subject, ca, ski, aki)

    @classmethod
    def _from_objects(cls, certificate: x509.Certificate, der: bytes) -> _Facts:  # pragma: no cover
        try:
            return cls._from_parsed_fields(certificate, der)
        except (ValueError, x509.DuplicateExtension):
            # Fields cryptography cannot parse: a certificate that links to nothing.
            token = hashlib.sha256(der).digest()
            return cls(certificate, der, b"issuer?" + token, b"subject?" + token, None, None, None)

    @classmethod
    def _from_parsed_fields(
        cls, certificate: x509.Certificate, der: bytes
    ) -> _Facts:  # pragma: no cover
        extensions = certificate.extensions
        ca: bool | None = None
        ski = aki = None
        for extension in extensions:
            value = extension.value
            if isinstance(value, x509.BasicConstraints):
                ca = value.ca
            elif isinstance(value, x509.SubjectKeyIdentifier):
                ski = value.key_identifier
            elif isinstance(value, x509.AuthorityKeyIdentifier):
                aki = value.key_identifier
        return cls(
            certificate,
            der,
            certificate.issuer.public_bytes(),
            certificate.subject.public_bytes(),
            ca,
            ski,
            aki,
        )

    @property
    def self_issued(self) -> bool:
        """Subject and issuer are the same name."""
        return self.subject == self.issuer

    def tie_break(self) -> tuple[float, bytes]:
        """Sort key among equals: later notBefore first, then the smaller SHA-256 fingerprint."""
        return (
            -self.certificate.not_valid_before_utc.timestamp(),
            hashlib.sha256(self.der).digest(),
        )


# The same few intermediates and roots arrive with every order of an account (a batch of many
# orders repeats them thousands of times), so what was read from a CA certificate is kept, keyed by
# its DER: loading it again skips both cryptography's parse and the DER walk.  End entities are
# unique per order and are never kept.  Bounded: the oldest entry goes when the cache is full.
_CA_FACTS: dict[bytes, _Facts] = {}
_CA_FACTS_MAX = 128


def _remember_ca(facts: _Facts) -> None:
    while len(_CA_FACTS) >= _CA_FACTS_MAX:
        try:
            del _CA_FACTS[next(iter(_CA_FACTS))]
        except (KeyError, RuntimeError, StopIteration):  # pragma: no cover - another thread won
            break
    _CA_FACTS[facts.der] = facts


def known_ca_certificate(der: bytes) -> x509.Certificate | None:
    """A CA certificate already loaded from exactly these bytes, if it is still cached.

    Args:
        der: A certificate's DER encoding.

    Returns:
        The same (immutable) certificate object loaded before, or None.
    """
    facts = _CA_FACTS.get(der)
    return None if facts is None else facts.certificate


def signature_check(child: x509.Certificate, parent: x509.Certificate) -> bool | None:
    """Whether ``parent``'s key made ``child``'s signature.

    Tries ``verify_directly_issued_by`` first and falls back to a direct check with the public key,
    because cryptography refuses SHA-1 RSA signatures there ("Unsupported signature algorithm")
    while old roots such as "AAA Certificate Services" still carry one (DOMAIN.md).

    Args:
        child: The certificate whose signature is checked.
        parent: The candidate issuer.

    Returns:
        True when the signature verifies, False when it does not, None when it cannot be checked
        at all (an algorithm cryptography does not implement, such as MD2 on old v1 roots).
    """
    try:
        child.verify_directly_issued_by(parent)
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        try:
            key = parent.public_key()
        except (ValueError, UnsupportedAlgorithm):
            return None  # a key cryptography cannot parse or does not implement
        return _verify_with_key(child, key)
    return True


def signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """Whether the signature on ``child`` verifies with ``parent``'s key (see signature_check).

    Args:
        child: The certificate whose signature is checked.
        parent: The candidate issuer.

    Returns:
        True only when the signature was checked and verifies.
    """
    return signature_check(child, parent) is True


def _verify_with_key(child: x509.Certificate, key: object) -> bool | None:
    signature, data = child.signature, child.tbs_certificate_bytes
    try:
        algorithm = child.signature_hash_algorithm
    except (UnsupportedAlgorithm, ValueError):
        return None
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            # RSASSA-PSS signatures fail here and are left to verify_directly_issued_by above.
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, dsa.DSAPublicKey) and algorithm is not None:
            key.verify(signature, data, algorithm)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except UnsupportedAlgorithm:
        return None
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _common_name(certificate: x509.Certificate) -> str:
    """The subject's CN, or the whole subject when it has none (for messages and repr)."""
    try:
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if names:
            value = names[0].value
            return value if isinstance(value, str) else value.decode("utf-8", "replace")
        return certificate.subject.rfc4514_string() or "<empty subject>"
    except ValueError:
        # cryptography parses names on first access; a malformed one must not break a message.
        digest = certificate.fingerprint(hashes.SHA256()).hex()[:16]
        return f"<malformed subject, SHA-256 {digest}...>"


def _issuer_common_name(certificate: x509.Certificate) -> str:
    try:
        names = certificate.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return "its issuer"
    return str(names[0].value) if names else "its issuer"


class _Graph:
    """Issuer links between the certificates of one set."""

    def __init__(self, facts: Sequence[_Facts], roots: Iterable[_Facts] = ()) -> None:
        self.facts = facts
        root_ids = {id(r) for r in roots}
        by_subject: dict[bytes, list[_Facts]] = {}
        for fact in facts:
            by_subject.setdefault(fact.subject, []).append(fact)
        self.parents: dict[int, list[_Facts]] = {}
        self.children: dict[int, list[_Facts]] = {id(f): [] for f in facts}
        for fact in facts:
            if id(fact) in root_ids:
                # A root's issuer is itself; its cross-certificate shares its subject and key
                # and would otherwise look like its parent.
                self.parents[id(fact)] = []
                continue
            parents = [
                p
                for p in by_subject.get(fact.issuer, ())
                if p is not fact and (fact.aki is None or p.ski is None or fact.aki == p.ski)
            ]
            if len(parents) > 1 and (fact.aki is None or any(p.ski is None for p in parents)):
                # Names alone do not decide (old CAs without key identifiers): ask signatures.
                verified = [p for p in parents if signed_by(fact.certificate, p.certificate)]
                parents = verified or parents
            self.parents[id(fact)] = parents
            for parent in parents:
                self.children[id(parent)].append(fact)

    def distances(self, sources: Iterable[_Facts]) -> dict[int, int]:
        """Links from the nearest source, following child -> parent."""
        distance = {id(s): 0 for s in sources}
        queue = deque(s for s in sources)
        while queue:
            fact = queue.popleft()
            for parent in self.parents[id(fact)]:
                if id(parent) not in distance:
                    distance[id(parent)] = distance[id(fact)] + 1
                    queue.append(parent)
        return distance


def _self_signed(fact: _Facts) -> bool:
    if not fact.self_issued:
        return False
    if fact.aki is not None and fact.ski is not None:
        return fact.aki == fact.ski
    # None (an algorithm nobody implements any more, MD2 on 1990s v1 roots): the names decide.
    return signature_check(fact.certificate, fact.certificate) is not False


def classify(certificates: Iterable[tuple[x509.Certificate, bytes]]) -> CertificateChain:
    """Sort certificates into a chain by content (see the module docstring for the rules).

    Args:
        certificates: ``(certificate, its DER)`` pairs, in any order, duplicates allowed.

    Returns:
        The classified chain; duplicates (same DER) appear once.
    """
    unique: dict[bytes, _Facts] = {}
    for certificate, der in certificates:
        if der not in unique:
            unique[der] = _Facts.read(certificate, der)
    facts = list(unique.values())
    roots: list[_Facts] = []
    others: list[_Facts] = []
    for fact in facts:
        (roots if _self_signed(fact) else others).append(fact)
    graph = _Graph(facts, roots)
    # A CA by basicConstraints, or (no basicConstraints, or cA=False) yet the issuer of
    # another certificate here: either way not an end entity.
    cas = [f for f in others if f.ca or graph.children[id(f)]]
    leaves = [f for f in others if not (f.ca or graph.children[id(f)])]
    end_entity: _Facts | None = None
    if len(leaves) == 1:
        end_entity = leaves.pop()
    elif leaves:
        end_entity = min(leaves, key=lambda f: (not graph.parents[id(f)], f.tie_break()))
        leaves.remove(end_entity)
    if len(cas) > 1 or len(roots) > 1:
        _sort_by_distance(graph, end_entity, cas, roots)
    leaves.sort(key=_Facts.tie_break)
    return CertificateChain(
        end_entity.certificate if end_entity else None,
        tuple(f.certificate for f in (*cas, *leaves)),
        tuple(f.certificate for f in roots),
    )


def _sort_by_distance(
    graph: _Graph, end_entity: _Facts | None, cas: list[_Facts], roots: list[_Facts]
) -> None:
    """Order CAs and roots by links from the end entity, then from the lowest CAs."""
    from_end_entity = graph.distances([end_entity]) if end_entity else {}
    lowest = [f for f in cas if id(f) not in from_end_entity and not graph.children[id(f)]]
    from_lowest = graph.distances(lowest)

    def order(fact: _Facts) -> tuple[int, int, tuple[float, bytes]]:
        if id(fact) in from_end_entity:
            return (0, from_end_entity[id(fact)], fact.tie_break())
        return (1, from_lowest.get(id(fact), 0), fact.tie_break())

    cas.sort(key=order)
    roots.sort(key=order)


def _certificate_tuple(certificates: Iterable[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    return tuple(certificates)


@attrs.frozen(repr=False)
class CertificateChain:
    """Certificates sorted into end entity, intermediates and roots.

    Build one with :func:`smime_collect.load_certificates` or
    :meth:`CertificateChain.from_certificates`; the rules are in this module's docstring.

    Attributes:
        end_entity: The certificate that is not a CA and issued nothing else here; None for a
            CA bundle.
        intermediates: The CA certificates that are not self-signed, from the one that issued the
            end entity upwards.
        roots: The self-signed certificates.
    """

    end_entity: x509.Certificate | None
    intermediates: tuple[x509.Certificate, ...] = attrs.field(
        default=(), converter=_certificate_tuple
    )
    roots: tuple[x509.Certificate, ...] = attrs.field(default=(), converter=_certificate_tuple)

    @classmethod
    def from_certificates(cls, certificates: Iterable[x509.Certificate]) -> CertificateChain:
        """Classify certificates already loaded, in any order.

        Args:
            certificates: The certificates (duplicates are dropped).

        Returns:
            The chain.
        """
        return classify((c, c.public_bytes(_DER)) for c in certificates)

    def __len__(self) -> int:
        return (self.end_entity is not None) + len(self.intermediates) + len(self.roots)

    def __iter__(self) -> Iterator[x509.Certificate]:
        if self.end_entity is not None:
            yield self.end_entity
        yield from self.intermediates
        yield from self.roots

    def __repr__(self) -> str:
        end_entity = _common_name(self.end_entity) if self.end_entity else None
        intermediates = [_common_name(c) for c in self.intermediates]
        roots = [_common_name(c) for c in self.roots]
        return (
            f"<CertificateChain end_entity={end_entity!r} "
            f"intermediates={intermediates!r} roots={roots!r}>"
        )

    def to_pem(self, include_root: bool = False) -> bytes:
        """End entity and intermediates (and the roots when asked), as concatenated PEM.

        Args:
            include_root: Append the roots too.

        Returns:
            PEM text, end entity first.
        """
        certificates = [*self.intermediates, *(self.roots if include_root else ())]
        if self.end_entity is not None:
            certificates.insert(0, self.end_entity)
        return b"".join(c.public_bytes(_PEM) for c in certificates)

    @property
    def fullchain_pem(self) -> bytes:
        """End entity then intermediates, as PEM (what servers and mail clients install)."""
        return self.to_pem()

    @property
    def chain_pem(self) -> bytes:
        """The intermediates only, as PEM."""
        return b"".join(c.public_bytes(_PEM) for c in self.intermediates)

    def to_pkcs7(self, include_root: bool = True) -> bytes:
        """Every certificate as a DER certs-only PKCS#7 SignedData.

        Args:
            include_root: Include the roots.

        Returns:
            The DER bytes (the SET is DER-sorted: PKCS#7 keeps no order).
        """
        certificates = [c for c in self if include_root or c not in self.roots]
        return pkcs7.serialize_certificates(certificates, _DER)

    def to_pkcs12(
        self,
        private_key: pkcs12.PKCS12PrivateKeyTypes,
        *,
        password: bytes | None = None,
        friendly_name: bytes | None = None,
        include_root: bool = False,
    ) -> bytes:
        """The end entity, its private key and the CA certificates as PKCS#12.

        Args:
            private_key: The end entity's private key.
            password: Encrypt with the best available algorithm; None leaves it unencrypted.
            friendly_name: The bag's friendly name (defaults to the end entity's first e-mail
                address, or none).
            include_root: Include the roots with the intermediates.

        Returns:
            The PKCS#12 (PFX) bytes.

        Raises:
            InvalidRequestError: There is no end entity, or the key does not match it.
        """
        if self.end_entity is None:
            raise InvalidRequestError("a CA bundle has no end entity to put in a PKCS#12 file")
        try:
            matches = private_key.public_key() == self.end_entity.public_key()
        except ValueError:  # the end entity's key cannot be parsed
            matches = False
        if not matches:
            raise InvalidRequestError(
                f"the private key does not match the end entity {_common_name(self.end_entity)!r}"
            )
        if friendly_name is None and self.email_addresses:
            friendly_name = self.email_addresses[0].encode()
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        cas = [*self.intermediates, *(self.roots if include_root else ())]
        return pkcs12.serialize_key_and_certificates(
            friendly_name, private_key, self.end_entity, cas or None, encryption
        )

    @property
    def fingerprint_sha256(self) -> str | None:
        """The end entity's SHA-256 fingerprint as lowercase hex, or None for a CA bundle."""
        if self.end_entity is None:
            return None
        return self.end_entity.fingerprint(hashes.SHA256()).hex()

    @property
    def email_addresses(self) -> tuple[str, ...]:
        """The end entity's e-mail addresses: rfc822Name SANs, then subject emailAddress values."""
        if self.end_entity is None:
            return ()
        found: list[str] = []
        try:
            san = self.end_entity.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            found.extend(san.value.get_values_for_type(x509.RFC822Name))
        except (
            x509.ExtensionNotFound,
            x509.DuplicateExtension,
            x509.UnsupportedGeneralNameType,
            ValueError,  # a malformed extension: cryptography parses them on first access
        ):
            pass
        try:
            attributes = self.end_entity.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)
        except ValueError:  # a malformed subject: cryptography parses it on first access
            attributes = []
        for attribute in attributes:
            value = attribute.value
            found.append(value if isinstance(value, str) else value.decode("ascii", "replace"))
        return tuple(dict.fromkeys(found))

    def verify(self) -> None:
        """Check the signature on every link present, from the end entity to the roots.

        Each certificate is checked against every certificate here that names it (issuer name
        and key identifiers); one that verifies is enough.  A root's self-signature is checked
        too.  Validity dates, extensions and trust are not: this proves the pieces fit.

        Raises:
            ChainError: A signature does not verify, or a certificate links to nothing else in a
                chain of more than one certificate; the message names the subjects' CNs.
        """
        facts = [_Facts.read(c, c.public_bytes(_DER)) for c in self]
        root_ids = {id(c) for c in self.roots}
        graph = _Graph(facts, [f for f in facts if id(f.certificate) in root_ids])
        linked: set[int] = set()
        for fact in facts:
            name = _common_name(fact.certificate)
            if id(fact.certificate) in root_ids:
                status = signature_check(fact.certificate, fact.certificate)
                if status is None:
                    raise ChainError(
                        f"the self-signature of the root {name!r} uses an algorithm that "
                        "cannot be checked"
                    )
                if not status:
                    raise ChainError(f"the root {name!r} is not validly self-signed")
                continue
            parents = graph.parents[id(fact)]
            if not parents:
                continue
            if not any(signed_by(fact.certificate, p.certificate) for p in parents):
                issuer = _common_name(parents[0].certificate)
                raise ChainError(
                    f"broken link {name!r} <- {issuer!r}: the signature on {name!r} "
                    f"does not verify with the key of {issuer!r}"
                )
            linked.add(id(fact))
            linked.update(id(p) for p in parents)
        if len(facts) > 1:
            for fact in facts:
                if id(fact) not in linked:
                    name = _common_name(fact.certificate)
                    issuer_name = _issuer_common_name(fact.certificate)
                    raise ChainError(
                        f"broken link: {name!r} is not linked to the rest of the chain "
                        f"({issuer_name!r} is missing, and {name!r} issued none of the others)"
                    )
