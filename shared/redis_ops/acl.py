"""Redis ACL users, one per service, each with only the commands and keys its code uses.

Derived from the Redis calls of each service (shared.bus.worker, shared.bus.publish,
shared.bus.engine, services.*): no service may run CONFIG, DEBUG, FLUSHALL, SAVE, SHUTDOWN or
touch keys outside its patterns; ``admin`` (the stack, operators) can do everything; the
``default`` user is off. Passwords are generated once and kept in a 0600 JSON file under var/
(embedded stack) or come from the environment (compose); the ACL file holds only their SHA-256."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.bus import streams
from shared.config import Settings
from shared.logs import get_logger

P = streams.PREFIX
log = get_logger("redis_acl")


@dataclass(frozen=True)
class Selector:
    """Commands allowed on some of a user's keys only (a Redis 7 ACL selector): trimming the
    stream it writes, deleting its own keys, never another service's."""

    keys: tuple[str, ...]
    commands: tuple[str, ...]


@dataclass(frozen=True)
class AclUser:
    name: str
    keys: tuple[str, ...]  # key patterns (~)
    commands: tuple[str, ...]  # +command, +command|subcommand, +@category, -...
    channels: tuple[str, ...] = ()  # pub/sub channel patterns (&)
    selectors: tuple[Selector, ...] = ()


# Every client: connect, authenticate, ping, run the bus's Lua scripts and transactions.
# (CLIENT SETINFO, which redis-py sends, is refused and ignored: it is 7.2+ only.)
_CLIENT = (
    "+ping",
    "+echo",
    "+hello",
    "+auth",
    "+select",
    "+reset",
    "+client|setname",
    "+client|getname",
    "+client|id",
    "+acl|whoami",
    "+multi",
    "+exec",
    "+discard",
    "+evalsha",
    "+eval",
    "+script|load",
    "+script|exists",
    "+wait",  # durable acknowledgement: AEGIS_REDIS_WAIT_REPLICAS (shared.bus.publish.make_durable)
)
# A consumer-group worker (shared.bus.worker.StreamWorker) reading and acknowledging its input.
_GROUP = (
    "+xgroup|create",
    "+xgroup|createconsumer",
    "+xgroup|delconsumer",
    "+xreadgroup",
    "+xpending",
    "+xautoclaim",
    "+xclaim",
    "+xack",
    "+xinfo|groups",
    "+xinfo|consumers",
    "+xinfo|stream",
    "+xlen",
)
_READ = ("+xread", "+xrange", "+xrevrange", "+hget", "+hgetall", "+get")
_BLOCKS = (streams.BLOCKS, streams.LATEST_BLOCKS, streams.LATEST_BLOCKS + ":as_of")

# Health reports: each process writes (and renews) its own; any may read all
# (services.healthcheck does, with SCAN and MGET; workers check whether a consumer's report
# is still alive). One pattern: Redis 6.2 has no read-only key patterns.
HEALTH = f"{streams.HEALTH_PREFIX}*"
_HEALTHCHECK = ("+scan", "+mget", "+exists")

# Writes, each allowed on the keys the service owns only (Redis 7 selectors): a credential
# can then neither overwrite (SET), expire, delete nor trim another service's stream. Every
# service writes its health report, the durable-ack key and dead letters; a group-read stream
# is trimmed by the service that writes it (shared.bus.retention), since a reader able to trim
# could drop what other groups have not read yet. ACL cannot scope arguments: XADD's MAXLEN
# or MINID trims the stream appended to (docs/RELIABILITY.md, Access control).
_OWN_WRITES = (
    Selector((HEALTH,), ("+set", "+expire")),
    Selector((streams.DURABLE,), ("+set",)),
    Selector((streams.DEAD_LETTER,), ("+xadd",)),
)
_TRIM = ("+xtrim",)
_PUBLISH_BLOCKS = Selector(_BLOCKS, ("+xadd", "+hset"))  # shared.bus.publish's block script


def _engine(name: str) -> AclUser:
    return AclUser(
        name,
        keys=(
            streams.FEATURES,
            streams.CHAINS,
            streams.DAILY_FEATURES,
            streams.MODEL_EVENTS,
            *_BLOCKS,
            streams.DEAD_LETTER,
            HEALTH,
            streams.EPOCH,
            streams.DURABLE,
        ),
        commands=(*_CLIENT, *_GROUP, *_READ, *_HEALTHCHECK),
        selectors=(*_OWN_WRITES, _PUBLISH_BLOCKS),
    )


SERVICE_USERS: dict[str, AclUser] = {
    u.name: u
    for u in (
        AclUser(
            "ingest",
            keys=(
                streams.BARS,
                streams.CHAINS,
                f"{P}:series:*",
                f"{P}:digests:*",
                streams.DEAD_LETTER,
                streams.RUN,  # what the feed is doing, for the gateway's clock
                HEALTH,
                streams.EPOCH,
                streams.DURABLE,
            ),
            commands=(
                *_CLIENT,
                *_READ,
                *_HEALTHCHECK,
                "+xlen",
                "+xinfo|stream",
                "+xinfo|groups",
                "+xpending",  # what every group acknowledged, before trimming
                "+hmget",  # series state
            ),
            selectors=(
                *_OWN_WRITES,
                Selector((streams.BARS,), ("+xadd", *_TRIM)),
                Selector((streams.CHAINS,), ("+xadd",)),
                # the run epoch: started by ingest (or the stack), only read by the others
                Selector((streams.RUN, streams.EPOCH), ("+set",)),
                # the bar script: series state and sequence numbers (a poisoned sequence field
                # is dropped), the digests of published bars with their expiry
                Selector((f"{P}:series:*",), ("+hset", "+hincrby", "+hdel")),
                Selector((f"{P}:digests:*",), ("+hset", "+expire")),
            ),
        ),
        AclUser(
            "features",
            keys=(
                streams.BARS,
                streams.FEATURES,
                streams.DAILY_FEATURES,
                streams.checkpoint("features"),
                *_BLOCKS,
                streams.DEAD_LETTER,
                HEALTH,
                streams.EPOCH,
                streams.DURABLE,
            ),
            commands=(*_CLIENT, *_GROUP, *_READ, *_HEALTHCHECK),
            selectors=(
                *_OWN_WRITES,
                _PUBLISH_BLOCKS,  # the market block
                Selector((streams.FEATURES,), ("+xadd", *_TRIM)),
                Selector((streams.DAILY_FEATURES,), ("+hset",)),
                Selector((streams.checkpoint("features"),), ("+set",)),
            ),
        ),
        AclUser(
            "alerts",  # services.alerts: its group on the blocks, its own keys, the run clock
            keys=(
                streams.BLOCKS,
                streams.ALERTS,
                f"{streams.ALERTS_PREFIX}*",
                streams.RUN,
                streams.DEAD_LETTER,
                HEALTH,
                streams.EPOCH,
                streams.DURABLE,
            ),
            commands=(*_CLIENT, *_GROUP, *_READ, *_HEALTHCHECK),
            selectors=(
                *_OWN_WRITES,
                Selector((streams.ALERTS,), ("+xadd",)),
                # its state, the leader lease (renewed, released by its holder), send claims
                Selector((f"{streams.ALERTS_PREFIX}*",), ("+set", "+hset", "+pexpire", "+del")),
            ),
        ),
        AclUser(
            # services.history: its groups on the blocks and alerts (it writes to its database)
            "history",
            keys=(
                streams.BLOCKS,
                streams.ALERTS,
                streams.DEAD_LETTER,
                HEALTH,
                streams.EPOCH,
                streams.DURABLE,
            ),
            commands=(*_CLIENT, *_GROUP, *_READ, *_HEALTHCHECK),
            selectors=_OWN_WRITES,
        ),
        _engine("direction"),
        _engine("seller"),
        _engine("buyer"),
        AclUser(
            "gateway",
            # series state: the newest input bar, which no block may be ahead of
            keys=(
                *_BLOCKS,
                f"{P}:series:*",
                streams.RUN,
                streams.ALERTS,  # read only: GET /api/v1/alerts
                f"{P}:gateway:*",
                streams.DEAD_LETTER,
                HEALTH,
                streams.EPOCH,
                streams.DURABLE,
            ),
            commands=(*_CLIENT, *_READ, *_HEALTHCHECK),
            selectors=(
                *_OWN_WRITES,
                Selector((f"{P}:gateway:*",), ("+set", "+del")),  # its dead-letter marks
                # a refused block leaves the latest-blocks hashes
                Selector((streams.LATEST_BLOCKS, streams.LATEST_BLOCKS + ":as_of"), ("+hdel",)),
            ),
        ),
        # rq uses many commands (lists, sorted sets, hashes, pub/sub, scripts) on its own keys;
        # the trainer gets all of them there, minus the dangerous ones, plus INFO (rq reads the
        # server version) and the model announcements.
        AclUser(
            "trainer",
            keys=("rq:*", HEALTH),
            commands=("+@all", "-@dangerous", "+info"),
            channels=("rq:*",),
            selectors=(
                Selector((streams.MODEL_EVENTS,), ("+xadd",)),
                Selector((streams.DURABLE,), ("+set",)),  # its announcements' WAIT
            ),
        ),
        AclUser("admin", keys=("*",), commands=("+@all",), channels=("*",)),
        # Replication and Sentinel (docs: "Redis replication" / "Sentinel ACL"): a replica
        # authenticates to its primary as ``replica``, the sentinels as ``sentinel``.
        AclUser("replica", keys=(), commands=("+psync", "+replconf", "+ping")),
        AclUser(
            "sentinel",
            keys=(),
            commands=(
                "+multi",
                "+slaveof",
                "+replicaof",
                "+ping",
                "+exec",
                "+subscribe",
                "+config|rewrite",
                "+role",
                "+publish",
                "+info",
                "+client|setname",
                "+client|kill",
                "+script|kill",
            ),
            channels=("*",),
        ),
    )
}
SERVICES = (
    "ingest",
    "features",
    "direction",
    "seller",
    "buyer",
    "gateway",
    "trainer",
    "alerts",
    "history",
)


def acl_rules(user: AclUser, password: str, selectors: bool = True) -> str:
    """The rules of one user, for an ACL file line or ACL SETUSER (password as SHA-256).
    ``selectors`` False (Redis 6.2 has none): a selector's commands are allowed on all the
    user's keys, a wider grant, logged."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    keys, commands = list(user.keys), list(user.commands)
    if not selectors and user.selectors:
        log.warning("acl_without_selectors", user=user.name, widened=_selector_text(user))
        for selector in user.selectors:
            keys += [k for k in selector.keys if k not in keys]
            commands += [c for c in selector.commands if c not in commands]
    parts = ["reset", "on", f"#{digest}", *(f"~{k}" for k in keys)]
    parts += ["resetchannels", *(f"&{c}" for c in user.channels)]
    parts += ["-@all", *commands] if commands[0] != "+@all" else commands
    if selectors and user.selectors:
        parts.append(_selector_text(user))
    return " ".join(parts)


def _selector_text(user: AclUser) -> str:
    return " ".join(
        "(" + " ".join([*(f"~{k}" for k in s.keys), *s.commands]) + ")" for s in user.selectors
    )


# The default user is off and has no password: no client can authenticate as it. It keeps all
# permissions because Redis (7.0.15, 7.2; fixed upstream in redis/redis#14545) re-checks a
# MULTI/EXEC read back from the AOF against the default user: with -@all, every transaction
# (all the workers' batches) would be dropped from the data at the next restart.
DEFAULT_USER = "user default off resetpass ~* &* +@all"


def acl_file_text(passwords: dict[str, str], selectors: bool = True) -> str:
    """An ACL file: the default user off, every user of ``passwords`` with its rules
    (``selectors``: the server is Redis 7 or newer)."""
    lines = [DEFAULT_USER]
    for name in sorted(passwords):
        rules = acl_rules(SERVICE_USERS[name], passwords[name], selectors)
        lines.append(f"user {name} {rules}")
    return "\n".join(lines) + "\n"


def credentials_file(var_dir: Path) -> Path:
    """Where ``make run`` keeps the passwords it generated for its embedded Redis."""
    return var_dir / "redis" / "credentials.json"


def local_credentials(settings: Settings, user: str) -> Settings:
    """A process started by hand beside ``make run`` (another replica, an operator command)
    connects as ``user`` with the password the stack generated, read from its credentials
    file; settings that name a user, a password or a URL are kept as they are, and so are
    they without that file."""
    path = credentials_file(settings.var_dir)
    given = settings.redis_user or {"redis_password", "redis_url"} & settings.model_fields_set
    if given or not settings.embedded_redis or not path.exists():
        return settings
    password = json.loads(path.read_text()).get(user)
    return settings.with_credentials(user, password) if password else settings


def load_or_create_passwords(path: Path) -> dict[str, str]:
    """Every user's password from ``path`` (created 0600 with random passwords when absent;
    users added since get one too)."""
    path = Path(path)
    passwords: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [n for n in SERVICE_USERS if n not in passwords]
    if missing:
        passwords.update({n: secrets.token_urlsafe(24) for n in missing})
        write_private(path, json.dumps(passwords, indent=1, sort_keys=True))
    return passwords


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def service_env(service: str, passwords: dict[str, str], address: str) -> dict[str, str]:
    """The environment that makes a service process connect as its own user."""
    return {
        "AEGIS_REDIS_URL": address,
        "AEGIS_REDIS_USER": service,
        "AEGIS_REDIS_PASSWORD": passwords[service],
        "AEGIS_EMBEDDED_REDIS": "false",
    }


def passwords_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Every user's password from ``AEGIS_REDIS_PASSWORD_<USER>`` (compose, an orchestrator's
    secrets); raises naming every one that is missing or empty."""
    names = {user: f"AEGIS_REDIS_PASSWORD_{user.upper()}" for user in SERVICE_USERS}
    missing = [var for var in names.values() if not environ.get(var)]
    if missing:
        raise ValueError(f"missing Redis passwords: {', '.join(missing)}")
    return {user: environ[var] for user, var in names.items()}


def main(argv: list[str] | None = None) -> int:
    """``python -m shared.redis_ops.acl OUT``: write the ACL file for the passwords in the
    environment (``AEGIS_REDIS_PASSWORD_<USER>``), mode 0600 (``--mode`` for another)."""
    parser = argparse.ArgumentParser(
        prog="python -m shared.redis_ops.acl", description=main.__doc__
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--mode", type=lambda text: int(text, 8), default=0o600)
    args = parser.parse_args(argv)
    try:
        passwords = passwords_from_env(os.environ)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    write_private(args.out, acl_file_text(passwords))
    args.out.chmod(args.mode)
    print(f"wrote {args.out}: users {', '.join(sorted(passwords))}, default off")
    return 0


if __name__ == "__main__":
    sys.exit(main())
