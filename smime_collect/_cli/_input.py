"""What ``smime-collect`` reads besides its options: credentials and lists of order numbers.

Credentials come from the environment (``SECTIGO_LOGIN_NAME``, ``SECTIGO_LOGIN_PASSWORD``, or the
same names with ``_FILE`` holding a path) or ``--password-file``; never from the command line.
No message built here ever contains a credential's value.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from .._client._config import credential_from_env
from .._exceptions import InvalidRequestError

__all__ = [
    "LOGIN_VARIABLE",
    "PASSWORD_VARIABLE",
    "UsageError",
    "credentials",
    "order_number",
    "order_numbers",
    "read_secret_file",
    "shown",
]


class UsageError(Exception):
    """A usage or configuration problem: reported in one line, exit status 2."""


# What a mistyped order number looks like; anything else is not echoed in error messages, since
# a misplaced argument could be a password, which is never printed.
_ORDER_LIKE = re.compile(r"[0-9\s,;.+-]{1,32}")


def shown(text: str) -> str:
    """``repr(text)`` when it looks like a mistyped order number, else a placeholder."""
    return repr(text) if _ORDER_LIKE.fullmatch(text) else "an argument (not shown)"


def order_number(text: str) -> int:
    """Parse one order number (an argparse ``type``).

    Raises:
        argparse.ArgumentTypeError: Not a positive integer.
    """
    value = text.strip()
    if not (value.isascii() and value.isdecimal()) or int(value) <= 0:
        raise argparse.ArgumentTypeError(
            f"{shown(text)} is not an order number (a positive integer, as Sectigo returned it)"
        )
    return int(value)


LOGIN_VARIABLE = "SECTIGO_LOGIN_NAME"
PASSWORD_VARIABLE = "SECTIGO_LOGIN_PASSWORD"  # noqa: S105 -- the name of a variable


def read_secret_file(path: Path, origin: str) -> str:
    """Read a secret from a file named by an option, its trailing newline stripped.

    Args:
        path: The file.
        origin: The option that named it, for messages (``--password-file``).

    Returns:
        The secret.

    Raises:
        UsageError: The file cannot be read or holds nothing; the message names the path only.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise UsageError(f"{origin} {str(path)!r} cannot be read: {reason}") from None
    value = text.rstrip("\r\n")
    if not value:
        raise UsageError(f"{origin} {str(path)!r} is empty")
    return value


def _is_set(env: Mapping[str, str], name: str) -> bool:
    # As credential_from_env reads them: an empty variable counts as unset.
    return bool(env.get(name) or env.get(f"{name}_FILE"))


def _from_environment(env: Mapping[str, str], name: str) -> str:
    try:
        return credential_from_env(env, name)
    except InvalidRequestError as exc:  # a _FILE unreadable or empty: its message names the path
        raise UsageError(str(exc)) from None


def credentials(
    password_file: Path | None, env: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """The login name and password, from the environment or ``--password-file``.

    Args:
        password_file: The ``--password-file`` path, which wins over the environment.
        env: The environment to read (default ``os.environ``).

    Returns:
        ``(login_name, password)``.

    Raises:
        UsageError: One is missing or its file cannot be read; the message never holds a value.
    """
    env = os.environ if env is None else env
    missing = []
    if not _is_set(env, LOGIN_VARIABLE):
        missing.append(f"{LOGIN_VARIABLE} (or {LOGIN_VARIABLE}_FILE)")
    if password_file is None and not _is_set(env, PASSWORD_VARIABLE):
        missing.append(f"{PASSWORD_VARIABLE} (or {PASSWORD_VARIABLE}_FILE, or --password-file)")
    if missing:
        raise UsageError(
            f"no Sectigo credentials: set {' and '.join(missing)}; "
            "passwords are never taken from the command line"
        )
    login = _from_environment(env, LOGIN_VARIABLE)
    if password_file is not None:
        return login, read_secret_file(password_file, "--password-file")
    return login, _from_environment(env, PASSWORD_VARIABLE)


def _read_orders_file(name: str) -> Iterator[tuple[str, int, str]]:
    if name == "-":
        yield from (("<stdin>", n, line) for n, line in enumerate(sys.stdin, 1))
        return
    try:
        with Path(name).open(encoding="utf-8") as handle:
            yield from ((name, n, line) for n, line in enumerate(handle, 1))
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise UsageError(f"--orders-file {name!r} cannot be read: {reason}") from None


def order_numbers(given: Sequence[int], orders_file: str | None) -> list[int]:
    """The orders to work on: the arguments, then the file's lines, each once, in order.

    Args:
        given: Order numbers from the command line.
        orders_file: The ``--orders-file`` path, ``-`` for stdin, or None.

    Returns:
        The order numbers without duplicates (two writers of one directory would race).

    Raises:
        UsageError: No order at all, or a line that is not an order number (named by line).
    """
    numbers = list(given)
    if orders_file is not None:
        for source, line_number, line in _read_orders_file(orders_file):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            try:
                numbers.append(order_number(text))
            except argparse.ArgumentTypeError:
                raise UsageError(
                    f"{source} line {line_number}: {shown(text)} is not an order number"
                ) from None
    if not numbers:
        raise UsageError("no order numbers: give ORDER arguments or --orders-file FILE")
    return list(dict.fromkeys(numbers))
