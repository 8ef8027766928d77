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

import itertools
import operator
from collections import deque
from collections.abc import Iterable, Iterator, Sequence

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from .._exceptions import ChainError, InvalidRequestError
from ._facts import (
    Facts,
    common_name,
    email_addresses,
    issuer_common_name,
    signature_check,
    signed_by,
)

__all__ = ["CertificateChain", "classify"]

_DER = serialization.Encoding.DER
_MAX_PARENTS = 4  # candidate issuers kept per certificate; real chains have one or two
_PEM = serialization.Encoding.PEM


_NONE: list[Facts] = []  # an empty candidate list, never modified
_CERTIFICATE = operator.attrgetter("certificate")


def _index(
    facts: Sequence[Facts],
) -> tuple[
    dict[bytes, list[Facts]], dict[tuple[bytes, bytes], list[Facts]], dict[bytes, list[Facts]]
]:
    """Certificates by subject, by (subject, SKI) and, without an SKI, by subject."""
    by_subject: dict[bytes, list[Facts]] = {}
    by_key: dict[tuple[bytes, bytes], list[Facts]] = {}
    without_key: dict[bytes, list[Facts]] = {}
    without_aki = False
    for fact in facts:
        without_aki = without_aki or fact.aki is None
        if fact.ski is None:
            without_key.setdefault(fact.subject, []).append(fact)
        else:
            by_key.setdefault((fact.subject, fact.ski), []).append(fact)
    if without_aki:  # only a certificate without an AKI looks its issuer up by name alone
        for fact in facts:
            by_subject.setdefault(fact.subject, []).append(fact)
    return by_subject, by_key, without_key


class _Graph:
    """Issuer links between the certificates of one set."""

    def __init__(self, facts: Sequence[Facts], roots: Iterable[Facts] = ()) -> None:
        self.facts = facts
        # Plain loops rather than comprehensions: this runs on every load, for a handful of
        # certificates, where a comprehension's own frame costs as much as its work.
        root_ids = set(map(id, roots))
        # Candidate issuers are looked up by name and key identifier, so even a hostile set of
        # thousands of certificates sharing one subject costs a bounded amount per certificate.
        by_subject, by_key, without_key = _index(facts)
        children: dict[int, list[Facts]] = {id(f): [] for f in facts}
        parents_of: dict[int, list[Facts]] = {}
        for fact in facts:
            if id(fact) in root_ids:
                # A root's issuer is itself; its cross-certificate shares its subject and key
                # and would otherwise look like its parent.
                parents_of[id(fact)] = []
                continue
            if fact.aki is None:
                pool = by_subject.get(fact.issuer, _NONE)
            else:
                pool = by_key.get((fact.issuer, fact.aki), _NONE)
                unkeyed = without_key.get(fact.issuer)
                if unkeyed:
                    pool = list(itertools.islice(itertools.chain(pool, unkeyed), _MAX_PARENTS + 1))
            if len(pool) == 1:  # the usual case: one candidate
                parents = [] if pool[0] is fact else [pool[0]]
            else:
                parents = list(itertools.islice((p for p in pool if p is not fact), _MAX_PARENTS))
                if len(parents) > 1 and (fact.aki is None or any(p.ski is None for p in parents)):
                    # Names alone do not decide (old CAs without key identifiers): ask
                    # signatures.
                    verified = [p for p in parents if signed_by(fact.certificate, p.certificate)]
                    parents = verified or parents
            parents_of[id(fact)] = parents
            for parent in parents:
                children[id(parent)].append(fact)
        self.parents = parents_of
        self.children = children

    def distances(self, sources: Iterable[Facts]) -> dict[int, int]:
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


def _self_signed(fact: Facts) -> bool:
    if not fact.self_issued:
        return False
    if fact.aki is not None and fact.ski is not None:
        return fact.aki == fact.ski
    # None (an algorithm nobody implements any more, MD2 on 1990s v1 roots): the names decide.
    return signature_check(fact.certificate, fact.certificate) is not False


def classify(certificates: Iterable[tuple[x509.Certificate, bytes]]) -> "CertificateChain":
    """Sort certificates into a chain by content (see the module docstring for the rules).

    Args:
        certificates: ``(certificate, its DER)`` pairs, in any order, duplicates allowed.

    Returns:
        The classified chain; duplicates (same DER) appear once.
    """
    unique: dict[bytes, Facts] = {}
    read = Facts.read
    for certificate, der in certificates:
        if der not in unique:
            unique[der] = read(certificate, der)
    facts = list(unique.values())
    roots: list[Facts] = []
    others: list[Facts] = []
    for fact in facts:
        # self_issued first: most certificates are not, and that needs no call.
        (roots if fact.subject == fact.issuer and _self_signed(fact) else others).append(fact)
    if len(roots) <= 1 and len(others) <= 2:
        simple = _simple_chain(others, roots)
        if simple is not None:
            return simple
    graph = _Graph(facts, roots)
    # A CA by basicConstraints, or (no basicConstraints, or cA=False) yet the issuer of
    # another certificate here: either way not an end entity.
    cas: list[Facts] = []
    leaves: list[Facts] = []
    children = graph.children
    for fact in others:
        (cas if fact.ca or children[id(fact)] else leaves).append(fact)
    end_entity: Facts | None = None
    if len(leaves) == 1:
        end_entity = leaves.pop()
    elif leaves:
        end_entity = min(leaves, key=lambda f: (not graph.parents[id(f)], f.tie_break()))
        leaves.remove(end_entity)
        leaves.sort(key=Facts.tie_break)
    if len(cas) > 1 or len(roots) > 1:
        _sort_by_distance(graph, end_entity, cas, roots)
    return CertificateChain(
        end_entity.certificate if end_entity else None,
        tuple(map(_CERTIFICATE, cas + leaves)),
        tuple(map(_CERTIFICATE, roots)),
    )


def _simple_chain(others: list[Facts], roots: list[Facts]) -> "CertificateChain | None":
    """The chain without building the issuer graph, when the rules leave nothing to sort.

    At most one root, one CA and one non-CA that issued nothing here (no other certificate names
    its subject as issuer, so the graph would give it no child): then the non-CA is the end
    entity, the CA the only intermediate, and no order or tie-break is involved.  The common
    EE + CA + root answer takes this path; anything else returns None for :func:`classify`'s
    general path.
    """
    end_entity: Facts | None = None
    cas: list[Facts] = []
    for fact in others:
        if fact.ca:
            cas.append(fact)
        elif end_entity is None:
            end_entity = fact
        else:
            return None  # two end entity candidates: a tie-break
    if end_entity is None or len(cas) > 1:
        return None
    for fact in others:
        if fact is not end_entity and fact.issuer == end_entity.subject:
            return None  # it may have issued the other one: the graph decides
    return CertificateChain(
        end_entity.certificate,
        tuple(map(_CERTIFICATE, cas)),
        tuple(map(_CERTIFICATE, roots)),
    )


def _sort_by_distance(
    graph: _Graph, end_entity: Facts | None, cas: list[Facts], roots: list[Facts]
) -> None:
    """Order CAs and roots by links from the end entity, then from the lowest CAs."""
    from_end_entity = graph.distances([end_entity]) if end_entity else {}
    lowest = [f for f in cas if id(f) not in from_end_entity and not graph.children[id(f)]]
    from_lowest = graph.distances(lowest)

    def order(fact: Facts) -> tuple[int, int, tuple[float, bytes]]:
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
    def from_certificates(cls, certificates: Iterable[x509.Certificate]) -> "CertificateChain":
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
        end_entity = common_name(self.end_entity) if self.end_entity else None
        intermediates = [common_name(c) for c in self.intermediates]
        roots = [common_name(c) for c in self.roots]
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
                f"the private key does not match the end entity {common_name(self.end_entity)!r}"
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
        return () if self.end_entity is None else email_addresses(self.end_entity)

    def verify(self) -> None:
        """Check the signature on every link present, from the end entity to the roots.

        Each certificate is checked against every certificate here that names it (issuer name
        and key identifiers); one that verifies is enough.  A root's self-signature is checked
        too.  Validity dates, extensions and trust are not: this proves the pieces fit.

        Raises:
            ChainError: A signature does not verify, or a certificate links to nothing else in a
                chain of more than one certificate; the message names the subjects' CNs.
        """
        unique: dict[bytes, Facts] = {}
        for certificate in self:
            der = certificate.public_bytes(_DER)
            if der not in unique:
                unique[der] = Facts.read(certificate, der)
        facts = list(unique.values())
        # Roles by content, not object identity: Facts.read may hand back an equal certificate
        # object cached from an earlier load.
        root_ders = {c.public_bytes(_DER) for c in self.roots}
        roots = [f for f in facts if f.der in root_ders]
        root_ids = {id(f) for f in roots}
        graph = _Graph(facts, roots)
        linked: set[int] = set()
        for fact in facts:
            name = common_name(fact.certificate)
            if id(fact) in root_ids:
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
                issuer = common_name(parents[0].certificate)
                raise ChainError(
                    f"broken link {name!r} <- {issuer!r}: the signature on {name!r} "
                    f"does not verify with the key of {issuer!r}"
                )
            linked.add(id(fact))
            linked.update(id(p) for p in parents)
        if len(facts) > 1:
            for fact in facts:
                if id(fact) not in linked:
                    name = common_name(fact.certificate)
                    issuer_name = issuer_common_name(fact.certificate)
                    raise ChainError(
                        f"broken link: {name!r} is not linked to the rest of the chain "
                        f"({issuer_name!r} is missing, and {name!r} issued none of the others)"
                    )
