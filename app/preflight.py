"""Start-up checks of `main.py run`: a configuration that cannot work stops the node before it
starts an engine or claims a lead, with one line naming the setting.

Without them a trunk URI lacking ``{phone}`` or a host makes every dial fail and burns every
lead's attempts within the hour; a missing script, an unreachable database or a CRM webhook
without its token fail later, mid-run. Checked: the trunk URI (``{phone}`` in a SIP URI with a
host and a valid port), the trunk's digest credentials (both or neither), the configured
script, the MQTT URL, the CRM webhook's URL and token, and that the database answers. The
messages never include a secret or a URL that may carry one.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import text

from app.config import Config, ConfigError
from bus import make_bus
from callflow.script_parse import load_script
from callflow.transfer import TransferPolicy, parse_targets
from models import init_db
from nlu.base import INTENTS
from telephony.pool import MAX_CALLS_PER_WORKER

log = logging.getLogger(__name__)

SAMPLE_PHONE = "13800000000"
# sip:user@host[:port][;params] or sips:, host a name, IPv4 or [IPv6]
_SIP_URI = re.compile(
    r"(?P<scheme>sips?):(?P<user>[^@\s;]+)@(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*)"
    r"(?::(?P<port>\d*))?(?P<params>;\S*)?"
)


class PreflightError(ConfigError):
    """The configuration cannot run a node; the message names the setting, in one line."""


def preflight(cfg: Config) -> None:
    """Raise PreflightError for the first setting that cannot work."""
    check_trunk_uri(cfg.telephony.trunk_uri)
    _check_trunk_credentials(cfg)
    _check_transfer(cfg)
    _check_script(cfg.callflow.script, recorded=cfg.recording.enabled)
    _check_bus(cfg.bus.mqtt_url, cfg.bus.topic_prefix)
    _check_crm(cfg)
    _check_database(cfg.database.url)


def check_trunk_uri(template: str) -> None:
    """`template` with ``{phone}`` in place must be a SIP URI with a host and a valid port."""
    where = "telephony.trunk_uri"
    if "{phone}" not in template:
        raise PreflightError(f"{where} must contain {{phone}} (where the lead's number goes)")
    try:
        uri = template.format(phone=SAMPLE_PHONE)
    except (KeyError, IndexError, ValueError):
        raise PreflightError(f"{where}: only {{phone}} may stand in braces") from None
    m = _SIP_URI.fullmatch(uri)
    if m is None:
        raise PreflightError(f"{where} must be a SIP URI: sip:{{phone}}@host[:port]")
    if not m["host"]:
        raise PreflightError(f"{where} has no host: sip:{{phone}}@host[:port]")
    port = m["port"]
    if port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise PreflightError(f"{where}: the port must be 1-65535")


def _check_trunk_credentials(cfg: Config) -> None:
    t = cfg.telephony
    if bool(t.username) != bool(t.password):
        missing = "telephony.password" if t.username else "telephony.username"
        raise PreflightError(
            f"telephony.username and telephony.password go together: {missing} is empty"
        )


def _check_transfer(cfg: Config) -> None:
    try:
        TransferPolicy(parse_targets(cfg.callflow.transfer_to), cfg.callflow.transfer_mode)
    except ValueError as exc:
        raise PreflightError(f"callflow.transfer_to / transfer_mode: {exc}") from None
    t = cfg.telephony
    bridges = cfg.callflow.transfer_to and cfg.callflow.transfer_mode != "refer"
    if bridges and t.engine == "pjsua2" and t.calls_per_worker >= MAX_CALLS_PER_WORKER:
        # a warning, not an error: the transfer still works whenever its worker has room
        log.warning(
            "callflow.transfer_mode %s can bridge the agent as a second call of the callee's "
            "media worker, which has no free slot when it carries %d calls; set "
            "telephony.calls_per_worker to %d to keep one free",
            cfg.callflow.transfer_mode,
            t.calls_per_worker,
            MAX_CALLS_PER_WORKER - 1,
        )


def _check_script(path: str, *, recorded: bool = False) -> None:
    try:
        load_script(path, known_intents=INTENTS, require_recording_notice=recorded)
    except Exception as exc:
        detail = str(exc).replace("\n", " ")
        raise PreflightError(f"callflow.script does not load: {detail}") from None


def _check_bus(url: str, prefix: str) -> None:
    try:
        make_bus(url, prefix=prefix)
    except (ValueError, ImportError) as exc:
        raise PreflightError(f"bus.mqtt_url (or MQTT_URL): {exc}") from None


def _check_crm(cfg: Config) -> None:
    c = cfg.crm
    if c.max_tries < 1:
        raise PreflightError(f"crm.max_tries must be at least 1, got {c.max_tries}")
    if c.engine in ("hubspot", "salesforce") and not c.token:
        raise PreflightError(
            f"crm.engine is {c.engine} but crm.token is empty (set CALLBOT__CRM__TOKEN)"
        )
    if c.engine == "salesforce" and not c.base_url:
        raise PreflightError("crm.engine is salesforce but crm.base_url (instance URL) is empty")
    if c.engine != "webhook":
        return
    if not c.webhook_url:
        raise PreflightError("crm.engine is webhook but crm.webhook_url is empty")
    if not c.token:
        raise PreflightError(
            "crm.engine is webhook but crm.token is empty (set CALLBOT__CRM__TOKEN)"
        )


def _check_database(url: str) -> None:
    """The database answers (and its schema is upgraded, as the node would)."""
    try:
        db = init_db(url)
        with db() as s:
            s.execute(text("SELECT 1"))
        db.kw["bind"].dispose()
    except Exception as exc:  # the URL is not shown: it may carry a password
        raise PreflightError(
            f"database.url (or DATABASE_URL): the database is not reachable ({type(exc).__name__})"
        ) from None
