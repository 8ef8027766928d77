"""What ``smime-collect inspect`` prints: a classified chain, and what ``--verify`` checked.

The chain is shown in the order ``CertificateChain`` iterates (end entity, intermediates from
the end entity's issuer upwards, roots), as aligned text or, on a terminal with rich, a table.
``--verify`` runs ``CertificateChain.verify()``; what it checked is named here, by issuer and
subject name, together with what it never checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

import attrs

from .._certs import rfc4514
from ._order_files import certificate_facts

if TYPE_CHECKING:
    from cryptography import x509

    from .._certs import CertificateChain
    from ._report import Terminal

__all__ = [
    "NOT_VERIFIED",
    "SignatureLinks",
    "chain_rows",
    "print_chain",
    "verification_json",
    "verification_lines",
    "verified_links",
]

# What ``inspect --verify`` (and CertificateChain.verify) never looks at.
NOT_VERIFIED = ("validity dates", "trust in any root", "revocation")


def _role_labels(chain: CertificateChain) -> list[str]:
    # In the order CertificateChain iterates: end entity, intermediates, roots; numbered when a
    # role holds more than one certificate, so each label names one row of the table.
    labels = ["end entity"] if chain.end_entity is not None else []
    for role, members in (("intermediate", chain.intermediates), ("root", chain.roots)):
        many = len(members) > 1
        labels.extend(f"{role} {n}" if many else role for n in range(1, len(members) + 1))
    return labels


def chain_rows(chain: CertificateChain) -> list[dict[str, Any]]:
    """One JSON-ready row per certificate: its role, then what ``certificate_facts`` reports.

    Args:
        chain: A classified chain.

    Returns:
        Rows in chain order: end entity, intermediates, roots.
    """
    roles = ["end entity"] * (chain.end_entity is not None)
    roles += ["intermediate"] * len(chain.intermediates) + ["root"] * len(chain.roots)
    return [
        {"role": role, **certificate_facts(cert)} for role, cert in zip(roles, chain, strict=True)
    ]


def print_chain(path: str, chain: CertificateChain, terminal: Terminal) -> None:
    """Print a classified chain as a readable table (rich on a terminal, aligned text otherwise).

    Args:
        path: The file the chain came from (a heading).
        chain: The chain.
        terminal: Where to print (its ``out``).
    """
    rows = chain_rows(chain)
    count = f"{len(rows)} certificate{'' if len(rows) == 1 else 's'}"
    if terminal.tables:
        _print_chain_rich(path, count, rows, terminal.out)
        return
    stream = terminal.out
    print(f"{path}: {count}", file=stream)
    for row in rows:
        print(f"  {row['role']}", file=stream)
        for label, key in (
            ("subject", "subject"),
            ("issuer", "issuer"),
            ("not before", "not_before"),
            ("not after", "not_after"),
            ("serial", "serial"),
            ("sha256", "sha256_fingerprint"),
        ):
            print(f"    {label:<11} {row[key]}", file=stream)
        if row["email_addresses"]:
            print(f"    {'e-mail':<11} {', '.join(row['email_addresses'])}", file=stream)


def _print_chain_rich(path: str, count: str, rows: Iterable[dict[str, Any]], out: IO[str]) -> None:
    from rich.console import Console  # noqa: PLC0415 -- optional dependency
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    # Every cell is a Text: plain strings would be read as rich markup ("[...]" in a subject)
    # and emoji codes (":AB:" inside a fingerprint would print as an emoji).
    table = Table(title=Text(f"{path}: {count}"), show_lines=True)
    for column in ("role", "subject", "issuer", "validity (UTC)"):
        table.add_column(column, overflow="fold")
    # A fingerprint is compared by eye or copied whole: never fold it mid-way.
    table.add_column("SHA-256", no_wrap=True)
    for row in rows:
        table.add_row(
            *(
                Text(value)
                for value in (
                    row["role"],
                    row["subject"],
                    row["issuer"],
                    f"{row['not_before']}\n{row['not_after']}",
                    row["sha256_fingerprint"],
                )
            )
        )
    Console(file=out, highlight=False, emoji=False).print(table)


# -- inspect --verify --------------------------------------------------------------------------


@attrs.frozen
class SignatureLinks:
    """Which signatures ``CertificateChain.verify`` checks in a chain, by position in it.

    Positions count in the order the chain iterates: end entity, intermediates, roots.

    Attributes:
        checked: ``(certificate, issuer)`` pairs whose signature is checked; a root is its
            own issuer (its self-signature).
        issuer_missing: Certificates whose issuer is not in the chain: nothing is checked for
            them.
    """

    checked: tuple[tuple[int, int], ...]
    issuer_missing: tuple[int, ...]


def verified_links(chain: CertificateChain) -> SignatureLinks:
    """Name the links of a chain that ``verify()`` checks (by issuer and subject name).

    Args:
        chain: A classified chain.

    Returns:
        The signatures checked, and the certificates whose issuer is absent.
    """
    certificates: list[x509.Certificate] = list(chain)
    subjects = [rfc4514(certificate, "subject") for certificate in certificates]
    first_root = len(certificates) - len(chain.roots)
    checked: list[tuple[int, int]] = []
    missing: list[int] = []
    for index, certificate in enumerate(certificates):
        if index >= first_root:
            checked.append((index, index))
            continue
        issuer = rfc4514(certificate, "issuer")
        parents = [n for n, subject in enumerate(subjects) if subject == issuer and n != index]
        if parents:
            checked.append((index, parents[0]))
        else:
            missing.append(index)
    return SignatureLinks(tuple(checked), tuple(missing))


def verification_json(chain: CertificateChain) -> dict[str, Any]:
    """What ``inspect --verify --json`` says was checked, and what was not.

    Args:
        chain: A chain whose ``verify()`` passed.

    Returns:
        ``checked`` (subject and issuer of each signature checked), ``issuer_missing``
        (subjects) and ``not_checked`` (what verification never covers).
    """
    certificates = list(chain)
    links = verified_links(chain)
    return {
        "checked": [
            {
                "subject": rfc4514(certificates[child], "subject"),
                "issuer": rfc4514(certificates[parent], "subject"),
            }
            for child, parent in links.checked
        ],
        "issuer_missing": [rfc4514(certificates[n], "subject") for n in links.issuer_missing],
        "not_checked": list(NOT_VERIFIED),
    }


def verification_lines(chain: CertificateChain) -> list[str]:
    """What ``inspect --verify`` says was checked, and what was not, as plain lines.

    Args:
        chain: A chain whose ``verify()`` passed.

    Returns:
        The lines, indented to sit under the chain's table.
    """
    certificates = list(chain)
    labels = _role_labels(chain)
    links = verified_links(chain)
    lines = []
    if links.checked:
        named = ", ".join(
            f"{labels[child]} (self-signed)"
            if child == parent
            else f"{labels[child]} <- {labels[parent]}"
            for child, parent in links.checked
        )
        count = len(links.checked)
        lines.append(
            f"  verify: {count} signature{'s' if count > 1 else ''} checked, all valid: {named}"
        )
    else:
        lines.append("  verify: no signature checked")
    for index in links.issuer_missing:
        issuer = rfc4514(certificates[index], "issuer")
        lines.append(
            f"  verify: the {labels[index]}'s signature is not checked: its issuer "
            f"({issuer}) is not in the file"
        )
    lines.append(f"  verify: never checked: {', '.join(NOT_VERIFIED)}")
    return lines
