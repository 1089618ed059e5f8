"""`main.py user add NAME --role R` and `main.py user token NAME`: console users and API
tokens. The password comes from ``CALLBOT_PASSWORD`` or stdin (one line), never argv, so it
stays out of shell history and the process list."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from sqlalchemy.orm import Session, sessionmaker

from .auth import AuthError, add_user, new_token

PASSWORD_ENV = "CALLBOT_PASSWORD"


def read_password(stdin: TextIO) -> str:
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    if stdin.isatty():
        import getpass

        return getpass.getpass("password: ")
    return stdin.readline().rstrip("\r\n")


def user_main(db: sessionmaker[Session], cmd: str, name: str, *, role: str, label: str) -> int:
    """0 on success; 1 with one line on stderr when the request cannot apply."""
    try:
        if cmd == "add":
            add_user(db, name, read_password(sys.stdin), role)
            print(f"user {name} added ({role})")
        elif cmd == "token":
            print(new_token(db, name, label))  # shown once; only its hash is stored
        else:
            raise AuthError(f"unknown user command {cmd!r}")
    except AuthError as exc:
        print(f"user {cmd}: {exc}", file=sys.stderr)
        return 1
    return 0
