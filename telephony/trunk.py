"""A SIP trunk as the media workers see it: transport, credentials, registration or IP
authentication, outbound proxy, From domain and display, codec order. Pure data (no pjsua2).

The pool hands a `TrunkSpec` to each worker process in the ``TELEPHONY_TRUNK`` environment
variable (JSON): an environment is readable by its owner only, unlike a command line, and the
password is in it. Two ways a carrier or a PBX admits us:

- **registration**: ``register=True``; the worker REGISTERs ``username`` at ``registrar``
  (default: ``sip:<domain>``) every ``register_expiry_s`` and answers 401/407 challenges with
  the digest credentials, on REGISTER and INVITE alike;
- **IP authentication**: ``register=False``; the trunk knows our address, nothing is
  registered, and credentials (if any) are used only when a request is challenged.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

ENV_VAR = "TELEPHONY_TRUNK"
TRANSPORTS = ("udp", "tcp")
DEFAULT_CODECS = ("PCMA", "PCMU", "G722")


class TrunkSpecError(ValueError):
    """A trunk setting that cannot work (unknown transport, a registration without a user)."""


@dataclass(frozen=True, slots=True)
class TrunkSpec:
    name: str = "default"  # named in logs and errors ("trunk 'carrier' rejected ...")
    transport: str = "udp"  # udp | tcp: how requests to the trunk travel
    username: str = ""  # digest user (and the registered user)
    password: str = field(default="", repr=False)  # never in a log line
    realm: str = "*"  # the digest realm the credentials are for; "*": any
    register: bool = False  # False: IP authentication (no REGISTER)
    registrar: str = ""  # "sip:host[:port]"; empty: sip:<domain>
    register_expiry_s: int = 300
    outbound_proxy: str = ""  # "sip:host[:port]": every request goes through it (loose route)
    domain: str = ""  # host part of our From (and of the registered AOR); empty: our address
    display: str = ""  # From display name
    codecs: tuple[str, ...] = DEFAULT_CODECS  # preference order; others are switched off

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise TrunkSpecError(f"trunk {self.name!r}: transport must be one of {TRANSPORTS}")
        if self.register and not self.username:
            raise TrunkSpecError(f"trunk {self.name!r}: registration needs a username")
        if self.register and not (self.registrar or self.domain):
            raise TrunkSpecError(f"trunk {self.name!r}: registration needs a registrar or domain")
        if self.register_expiry_s < 60:
            raise TrunkSpecError(f"trunk {self.name!r}: register_expiry_s must be >= 60")
        if not self.codecs:
            raise TrunkSpecError(f"trunk {self.name!r}: name at least one codec")
        if bool(self.username) != bool(self.password):
            raise TrunkSpecError(f"trunk {self.name!r}: username and password go together")

    @property
    def registrar_uri(self) -> str:
        return self.registrar or f"sip:{self.domain}"

    def with_transport(self, uri: str) -> str:
        """`uri` with ``;transport=tcp`` when the trunk is TCP and the URI names none."""
        if self.transport == "udp" or not uri or ";transport=" in uri.lower():
            return uri
        return f"{uri};transport=tcp"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrunkSpec:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TrunkSpecError("trunk spec must be a JSON object")
        data["codecs"] = tuple(data.get("codecs") or DEFAULT_CODECS)
        try:
            return cls(**data)
        except TypeError as err:
            raise TrunkSpecError(f"bad trunk spec: {err}") from None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> TrunkSpec:
        text = (os.environ if env is None else env).get(ENV_VAR, "")
        return cls.from_json(text) if text else cls()


def parse_codecs(text: str) -> tuple[str, ...]:
    """ "PCMA, pcmu,G.722" -> ("PCMA", "PCMU", "G722"): the config's comma list, normalised."""
    return tuple(c.strip().upper().replace(".", "") for c in text.split(",") if c.strip())


def codec_priorities(available: list[str], preferred: tuple[str, ...]) -> dict[str, int]:
    """pjsua codec ids ("PCMA/8000/1") -> priority: the preferred names 255, 254, ... in order,
    every other codec 0 (off). A preferred codec this build lacks is simply absent."""
    rank = {name.upper().replace(".", ""): i for i, name in enumerate(preferred)}
    out: dict[str, int] = {}
    for codec_id in available:
        i = rank.get(codec_id.split("/", 1)[0].upper())
        out[codec_id] = 0 if i is None else 255 - i
    return out
