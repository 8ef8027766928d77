"""SANS-I/O: sort a set of certificates into end entity, intermediates and roots.

Classification never trusts input order: a PKCS#7 SET is sorted by its DER bytes and the
endpoint's own sample lists the root first (``docs/reference/endpoint.md``, "Traps").  It follows
content only:

* **link** parent -> child: ``child.issuer == parent.subject`` (compared as DER bytes) and, when
  both are present, the child's authority key identifier equals the parent's subject key
  identifier.  When names and key identifiers leave several candidate parents and some lack key
  identifiers, signatures decide between them.
* **root**: self-issued *and* self-signed.  When both key identifiers are present they decide
  (a self-signature is made by the key the AKI names, so AKI == SKI); otherwise the signature is
  checked directly with the public key, which also accepts SHA-1 RSA self-signatures that
  ``verify_directly_issued_by`` refuses (a signature no library can check any more, MD2 on a
  1990s v1 root, leaves the names to decide).  The verdict is reached once per distinct CA
  certificate in a process (``_node``).  Self-signed wins over everything else: an old v1 root
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

The rules are explained in ``docs/explanation/formats.md``, "How certificates are classified".
This module does no I/O.
"""

import itertools
import operator
from collections import deque
from collections.abc import Iterable, Iterator, Sequence

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7

from .._exceptions import ChainError, InvalidRequestError
from . import _fast
from ._names import common_name, email_addresses, issuer_common_name
from ._node import ChainNode, read_node, signature_check, signed_by
from ._pkcs12 import bundle

__all__ = ["CertificateChain", "classify"]

_DER = serialization.Encoding.DER
_MAX_PARENTS = 4  # candidate issuers kept per certificate; real chains have one or two
_PEM = serialization.Encoding.PEM
_CERTIFICATE_OF = operator.attrgetter("certificate")  # a node's certificate, with map()


class _Graph:
    """Issuer links between the certificates of one set."""

    def __init__(self, nodes: Sequence[ChainNode], roots: Iterable[ChainNode] = ()) -> None:
        self.nodes = nodes
        root_ids = set(map(id, roots))
        # Candidate issuers are looked up by name and key identifier, so even a hostile set of
        # thousands of certificates sharing one subject costs a bounded amount per certificate.
        by_subject, by_key, without_key = _index(nodes)
        self.children: dict[int, list[ChainNode]] = {id(node): [] for node in nodes}
        self.parents: dict[int, list[ChainNode]] = {}
        for node in nodes:
            if id(node) in root_ids:
                # A root's issuer is itself; its cross-certificate shares its subject and key
                # and would otherwise look like its parent.
                self.parents[id(node)] = []
                continue
            if node.aki is None:
                pool = by_subject.get(node.issuer, [])
            else:
                pool = by_key.get((node.issuer, node.aki), [])
                unkeyed = without_key.get(node.issuer, [])
                pool = list(itertools.islice(itertools.chain(pool, unkeyed), _MAX_PARENTS + 1))
            parents = list(itertools.islice((p for p in pool if p is not node), _MAX_PARENTS))
            if len(parents) > 1 and (node.aki is None or any(p.ski is None for p in parents)):
                # Names alone do not decide (old CAs without key identifiers): ask signatures.
                verified = [p for p in parents if signed_by(node.certificate, p.certificate)]
                parents = verified or parents
            self.parents[id(node)] = parents
            for parent in parents:
                self.children[id(parent)].append(node)

    def distances(self, sources: Iterable[ChainNode]) -> dict[int, int]:
        """Links from the nearest source, following child -> parent.

        Args:
            sources: Where every path starts.

        Returns:
            The distance of every certificate reached, by ``id``.
        """
        distance = {id(source): 0 for source in sources}
        queue = deque(sources)
        while queue:
            node = queue.popleft()
            for parent in self.parents[id(node)]:
                if id(parent) not in distance:
                    distance[id(parent)] = distance[id(node)] + 1
                    queue.append(parent)
        return distance


def _index(
    nodes: Sequence[ChainNode],
) -> tuple[
    dict[bytes, list[ChainNode]],
    dict[tuple[bytes, bytes], list[ChainNode]],
    dict[bytes, list[ChainNode]],
]:
    """Certificates by subject, by (subject, SKI) and, without an SKI, by subject."""
    by_subject: dict[bytes, list[ChainNode]] = {}
    by_key: dict[tuple[bytes, bytes], list[ChainNode]] = {}
    without_key: dict[bytes, list[ChainNode]] = {}
    for node in nodes:
        by_subject.setdefault(node.subject, []).append(node)
        if node.ski is None:
            without_key.setdefault(node.subject, []).append(node)
        else:
            by_key.setdefault((node.subject, node.ski), []).append(node)
    return by_subject, by_key, without_key


def read_nodes(pairs: Iterable[tuple[x509.Certificate, bytes]]) -> list[ChainNode]:
    """The node of each distinct certificate (by DER), in first-seen order.

    Args:
        pairs: ``(certificate, its DER)``, duplicates allowed.

    Returns:
        The nodes.
    """
    unique: dict[bytes, ChainNode] = {}
    for certificate, der in pairs:
        if der not in unique:
            unique[der] = read_node(certificate, der)
    return list(unique.values())


def classify(certificates: Iterable[tuple[x509.Certificate, bytes]]) -> "CertificateChain":
    """Sort certificates into a chain by content (see the module docstring for the rules).

    Args:
        certificates: ``(certificate, its DER)`` pairs, in any order, duplicates allowed.

    Returns:
        The classified chain; duplicates (same DER) appear once.
    """
    nodes = read_nodes(certificates)
    roots: list[ChainNode] = []
    others: list[ChainNode] = []
    for node in nodes:
        (roots if node.self_signed else others).append(node)
    simple = _fast.simple_chain(others, roots)
    if simple is not None:
        return CertificateChain(
            simple[0].certificate, map(_CERTIFICATE_OF, simple[1]), map(_CERTIFICATE_OF, roots)
        )
    graph = _Graph(nodes, roots)
    # A CA by basicConstraints, or (no basicConstraints, or cA=False) yet the issuer of
    # another certificate here: either way not an end entity.
    cas = [node for node in others if node.ca or graph.children[id(node)]]
    leaves = [node for node in others if not (node.ca or graph.children[id(node)])]
    end_entity: ChainNode | None = None
    if leaves:
        # Prefer a leaf that links to the rest of the set, then the tie-break.
        end_entity = min(leaves, key=lambda n: (not graph.parents[id(n)], n.tie_break()))
        leaves.remove(end_entity)
        leaves.sort(key=ChainNode.tie_break)
    _sort_by_distance(graph, end_entity, cas, roots)
    return CertificateChain(
        end_entity.certificate if end_entity else None,
        map(_CERTIFICATE_OF, cas + leaves),
        map(_CERTIFICATE_OF, roots),
    )


def _sort_by_distance(
    graph: _Graph, end_entity: ChainNode | None, cas: list[ChainNode], roots: list[ChainNode]
) -> None:
    """Order CAs and roots by links from the end entity, then from the lowest CAs."""
    from_end_entity = graph.distances([end_entity]) if end_entity else {}
    lowest = [n for n in cas if id(n) not in from_end_entity and not graph.children[id(n)]]
    from_lowest = graph.distances(lowest)

    def order(node: ChainNode) -> tuple[int, int, tuple[float, bytes]]:
        if id(node) in from_end_entity:
            return (0, from_end_entity[id(node)], node.tie_break())
        return (1, from_lowest.get(id(node), 0), node.tie_break())

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
        key: PrivateKeyTypes,
        *,
        password: bytes,
        friendly_name: bytes | None = None,
        legacy: bool = False,
        include_root: bool = False,
    ) -> bytes:
        """The end entity, its private key and the intermediates, as one PKCS#12 file.

        What a user imports into a mail client.  The encryption is AES-256-CBC with PBKDF2 and
        an HMAC-SHA256 MAC, or with ``legacy=True`` 3DES with an SHA-1 MAC for importers that
        read nothing newer (see ``docs/how-to/mail-client-bundles.md``).

        Args:
            key: The end entity's private key, as ``serialization.load_pem_private_key``
                returns it (RSA, EC, Ed25519, Ed448 or DSA).
            password: The bundle's password: non-empty bytes.
            friendly_name: The name importers show (default: the end entity's first e-mail
                address).
            legacy: Write 3DES/SHA-1 instead of AES-256/PBKDF2.
            include_root: Add the roots after the intermediates.

        Returns:
            The PKCS#12 (PFX) bytes.

        Raises:
            InvalidRequestError: There is no end entity (a CA bundle), the key does not match its
                public key, or the password is empty or not bytes.
        """
        if self.end_entity is None:
            raise InvalidRequestError(
                "this chain has no end entity (a CA bundle): a PKCS#12 bundle needs the "
                "certificate the key belongs to"
            )
        if friendly_name is None and self.email_addresses:
            friendly_name = self.email_addresses[0].encode()
        cas = [*self.intermediates, *(self.roots if include_root else ())]
        return bundle(
            self.end_entity,
            key,
            cas,
            password=password,
            friendly_name=friendly_name,
            legacy=legacy,
            name=f"the end entity {common_name(self.end_entity)!r}",
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
        too, and a root is its own issuer: one that issued nothing else here (a bundle with an
        extra root, a chain whose cross-certificate is missing) is not a broken link.  Validity
        dates, extensions, trust anchors and revocation are not checked: this proves the pieces
        fit, not that they are to be trusted.

        Raises:
            ChainError: A signature does not verify, or a certificate other than a root links to
                nothing else in a chain of more than one certificate; the message names the
                subjects' CNs.
        """
        nodes = read_nodes((certificate, certificate.public_bytes(_DER)) for certificate in self)
        # Roles by content, not object identity: the CA cache may hand back an equal certificate
        # object loaded earlier.
        root_ders = {root.public_bytes(_DER) for root in self.roots}
        roots = [node for node in nodes if node.der in root_ders]
        graph = _Graph(nodes, roots)
        linked = {id(root) for root in roots}
        for root in roots:
            _check_self_signature(root)
        for node in nodes:
            parents = graph.parents[id(node)]
            if not parents:
                continue  # a root, or a certificate whose issuer is not here
            if not any(signed_by(node.certificate, parent.certificate) for parent in parents):
                name, issuer = common_name(node.certificate), common_name(parents[0].certificate)
                raise ChainError(
                    f"broken link {name!r} <- {issuer!r}: the signature on {name!r} "
                    f"does not verify with the key of {issuer!r}"
                )
            linked.add(id(node))
            linked.update(id(parent) for parent in parents)
        if len(nodes) > 1:
            for node in nodes:
                if id(node) not in linked:
                    name = common_name(node.certificate)
                    issuer_name = issuer_common_name(node.certificate)
                    raise ChainError(
                        f"broken link: {name!r} is not linked to the rest of the chain "
                        f"({issuer_name!r} is missing, and {name!r} issued none of the others)"
                    )


def _check_self_signature(root: ChainNode) -> None:
    status = signature_check(root.certificate, root.certificate)
    if status is None:
        raise ChainError(
            f"the self-signature of the root {common_name(root.certificate)!r} uses an "
            "algorithm that cannot be checked"
        )
    if not status:
        raise ChainError(f"the root {common_name(root.certificate)!r} is not validly self-signed")
