"""Device-reuse signals: windowed distinct counts held in Redis.

Three entities, each with its own hash-tagged keys so one script call touches one cluster
slot: the device (``{d:…}``), the user (``{u:…}``, the user id or else the email) and the IP
(``{i:…}``). Each relation is a sorted set of hashed members scored by the time they were
last seen (the request-id set keeps the first time), trimmed by time (older than the widest
window) and by rank (``cap`` newest kept), with a TTL of the widest window.

A user's or an IP's devices are kept per vendor id space (``fp-device``, ``ipqs-device``):
a Fingerprint visitor id and an IPQS guid of the same browser are two ids of one device,
so one set holding both would count every customer seen by both vendors as two devices. An
observation reads the set of its own vendor (``EntityRefs.device_space``).

A count over window ``w`` at time ``t`` is the number of members last seen at or after
``t - w``. Adding a member that is already there changes nothing, so a redelivered request
counts once. Members older than the widest window are never counted, so trimming them
(done when a set grows) only bounds memory and never changes a count. ``reuse_memory.py``
implements the same definition for batch rescoring.

The three calls go in one pipeline: one round trip per observation.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, cast

import msgspec
from redis.asyncio import Redis

from service.keys import ENTITY_NAME, Keys
from service.lua import Command, Link, LuaScript, execute
from service.redis_link import PooledLink

Entity = Literal["device", "user", "ip"]
Mode = Literal["gt", "nx"]
DeviceSpace = Literal["fp", "ipqs"]
DEVICE_SPACES: tuple[DeviceSpace, ...] = ("fp", "ipqs")

# (relation name, member kind, ZADD mode). Order is part of the feature specification.
RELATIONS: dict[Entity, tuple[tuple[str, str, Mode], ...]] = {
    "device": (
        ("users_per_device", "user", "gt"),
        ("emails_per_device", "email", "gt"),
        ("ips_per_device", "ip", "gt"),
        ("countries_per_device", "country", "gt"),
        ("linked_ids_per_device", "linked", "gt"),
        ("events_per_device", "event", "nx"),
    ),
    "user": (
        ("devices_per_user", "device", "gt"),
        ("ips_per_user", "ip", "gt"),
        ("events_per_user", "event", "nx"),
    ),
    "ip": (
        ("devices_per_ip", "device", "gt"),
        ("users_per_ip", "user", "gt"),
        ("events_per_ip", "event", "nx"),
    ),
}
ENTITIES: tuple[Entity, ...] = ("device", "user", "ip")
RELATION_NAMES: tuple[str, ...] = tuple(name for rels in RELATIONS.values() for name, _, _ in rels)
IPQS_FIELD = "ipqs"

# One script per entity, generated from this template with the configuration baked in
# (windows, cap, TTL, join window, ZADD mode per relation): a call then carries only the
# time and the members, which keeps command packing cheap on the hot path.
# ARGV: now, write ('1' / '0'), one member per relation ('' = none), IPQS blob ('' = none).
_TEMPLATE = """
local windows = {$windows}
local modes = {$modes}
local cap, ttl, blob_age, blob_field = $cap, $ttl, $blob_age, '$blob_field'
local now = tonumber(ARGV[1])
local write = ARGV[2] == '1'
local horizon = now - windows[#windows]
local n = #KEYS - 1
local meta = KEYS[#KEYS]
local out = {}
local touched = false
for k = 1, n do
  local key = KEYS[k]
  local member = ARGV[2 + k]
  -- Whether this member now sits at a score >= now, so inside every window.
  local inside = false
  if write and member ~= '' then
    touched = true
    -- ZADD without CH answers how many members are new: only a new member changes the
    -- size, so only then is the set trimmed. Trimming only bounds memory (counts never
    -- reach past the widest window), by time once the set is past a few members.
    local added = redis.call('ZADD', key, modes[k], now, member)
    if added == 1 then
      local size = redis.call('ZCARD', key)
      if size > 8 then
        size = size - redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. horizon)
      end
      if size > cap then redis.call('ZREMRANGEBYRANK', key, 0, size - cap - 1) end
    end
    -- An NX relation left unchanged keeps its TTL; anything else may have moved forward.
    if added == 1 or modes[k] ~= 'NX' then
      redis.call('PEXPIRE', key, ttl)
      inside = true
    end
  end
  -- Windows are nested: the widest count first; when it is 0, or 1 and that one is this
  -- member, every narrower window holds the same (a ZCOUNT spared per window).
  local base = #out
  local widest = redis.call('ZCOUNT', key, now - windows[#windows], '+inf')
  out[base + #windows] = widest
  for w = #windows - 1, 1, -1 do
    if widest == 0 or (widest == 1 and inside) then
      out[base + w] = widest
    else
      out[base + w] = redis.call('ZCOUNT', key, now - windows[w], '+inf')
    end
  end
end
local blob_value = ARGV[3 + n]
-- The meta hash in one read: first sighting, and for users the joined IPQS result.
local first, blob, blob_at
if blob_field ~= '' then
  local fields = redis.call('HMGET', meta, 'first', blob_field, blob_field .. ':at')
  first, blob, blob_at = tonumber(fields[1]), fields[2], tonumber(fields[3])
else
  first = tonumber(redis.call('HGET', meta, 'first'))
end
if write and touched then
  if not first or now < first then
    redis.call('HSET', meta, 'first', now)
    first = now
  end
  if blob_field ~= '' and blob_value ~= '' then
    redis.call('HSET', meta, blob_field, blob_value, blob_field .. ':at', now)
    blob, blob_at = blob_value, now
  end
  redis.call('PEXPIRE', meta, ttl)
end
out[#out + 1] = first or -1
if blob_field ~= '' and blob_at and blob_at >= now - blob_age and blob_at <= now then
  out[#out + 1] = blob
else
  out[#out + 1] = false
end
return out
"""


class EntityRefs(msgspec.Struct, frozen=True, kw_only=True):
    """Hashed identifiers of one observation; None = absent or blocked. ``device_space``
    names the vendor whose id ``device`` is: the user's and IP's device sets it is counted
    in (and read from)."""

    device: str | None = None
    device_space: DeviceSpace = "fp"
    user: str | None = None
    email: str | None = None
    ip: str | None = None
    country: str | None = None
    linked: str | None = None
    event: str | None = None

    def set_name(self, kind: str) -> str:
        """The name of the set holding members of ``kind`` (under a user or an IP)."""
        return device_set(self.device_space) if kind == "device" else kind

    def entity_id(self, entity: Entity) -> str | None:
        if entity == "user":
            return self.user or self.email
        return self.device if entity == "device" else self.ip


class ReuseSnapshot(msgspec.Struct, frozen=True):
    """Counts per relation (one per window, narrowest first), device first-seen, joined IPQS."""

    counts: dict[str, tuple[int, ...]]
    device_first_seen_ms: int | None = None
    ipqs_blob: bytes | None = None


class _Plan(NamedTuple):
    """How one entity's script is called for one device id space, worked out once: the
    hot path then only joins the entity id into the keys and reads members off the refs."""

    script: LuaScript
    tag: str  # what every key starts with, up to the entity id
    suffixes: tuple[str, ...]  # after the entity id: the relations' sets, then the meta hash
    kinds: tuple[str, ...]  # the ``EntityRefs`` member of each relation
    names: tuple[str, ...]  # the relation names, in the reply's order
    joins_ipqs: bool


class ReuseStore:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        windows_ms: Sequence[int],
        cap: int,
        ipqs_window_ms: int,
        link: Link | None = None,
    ) -> None:
        self._link = link or PooledLink(redis)
        self._windows = tuple(windows_ms)
        scripts = {
            entity: _script(entity, self._windows, cap, ipqs_window_ms) for entity in ENTITIES
        }
        self._scripts = list(scripts.values())
        self._plans = {
            (entity, space): _plan(keys, entity, space, scripts[entity])
            for entity in ENTITIES
            for space in DEVICE_SPACES
        }
        self._nothing = {name: (0,) * len(self._windows) for name in RELATION_NAMES}

    @property
    def windows_ms(self) -> tuple[int, ...]:
        return self._windows

    async def observe(
        self,
        refs: EntityRefs,
        now_ms: int,
        *,
        write: bool = True,
        ipqs_blob: bytes | None = None,
    ) -> ReuseSnapshot:
        """Record ``refs`` at ``now_ms`` (unless ``write`` is False) and read every count back."""
        snapshot, _ = await self.observe_with(refs, now_ms, write=write, ipqs_blob=ipqs_blob)
        return snapshot

    async def observe_with(
        self,
        refs: EntityRefs,
        now_ms: int,
        *,
        write: bool = True,
        ipqs_blob: bytes | None = None,
        also: Sequence[Command] = (),
        also_scripts: Sequence[LuaScript] = (),
    ) -> tuple[ReuseSnapshot, list[Any]]:
        """``observe``, with ``also`` sent in the same round trip; their replies second."""
        plans: list[tuple[Entity, _Plan]] = []
        commands: list[Command] = []
        flag = "1" if write else "0"
        for entity in ENTITIES:
            entity_id = refs.entity_id(entity)
            if entity_id is None:
                continue
            plan = self._plans[entity, refs.device_space]
            base = plan.tag + entity_id
            blob = ipqs_blob if plan.joins_ipqs and ipqs_blob else b""
            commands.append(
                (
                    "EVALSHA",
                    plan.script.sha,
                    len(plan.suffixes),
                    *[base + suffix for suffix in plan.suffixes],
                    now_ms,
                    flag,
                    *[getattr(refs, kind) or "" for kind in plan.kinds],
                    blob,
                )
            )
            plans.append((entity, plan))
        counts = dict(self._nothing)
        if not commands and not also:
            return ReuseSnapshot(counts), []
        replies = await execute(self._link, [*commands, *also], [*self._scripts, *also_scripts])
        first_seen: int | None = None
        blob_seen: bytes | None = None
        width = len(self._windows)
        for (entity, plan), reply in zip(plans, replies, strict=False):
            values = cast(list[Any], reply)
            # Counts are ZCOUNT integers; the meta pair follows them.
            for index, name in enumerate(plan.names):
                counts[name] = tuple(values[index * width : (index + 1) * width])
            marker = values[-2]
            if entity == "device" and marker >= 0:
                first_seen = marker
            if plan.joins_ipqs and isinstance(values[-1], bytes):
                blob_seen = values[-1]
        return ReuseSnapshot(counts, first_seen, blob_seen), replies[len(plans) :]


def _plan(keys: Keys, entity: Entity, space: DeviceSpace, script: LuaScript) -> _Plan:
    relations = RELATIONS[entity]
    in_space = EntityRefs(device_space=space)
    set_names = [in_space.set_name(kind) for _, kind, _ in relations]
    return _Plan(
        script=script,
        tag=keys.entity_head(entity),
        suffixes=tuple(ENTITY_NAME + name for name in [*set_names, "meta"]),
        kinds=tuple(kind for _, kind, _ in relations),
        names=tuple(name for name, _, _ in relations),
        joins_ipqs=entity == "user",
    )


def device_set(space: DeviceSpace) -> str:
    return f"{space}-device"


def _script(entity: Entity, windows: tuple[int, ...], cap: int, blob_age_ms: int) -> LuaScript:
    relations = RELATIONS[entity]
    source = string.Template(_TEMPLATE).substitute(
        windows=", ".join(str(w) for w in windows),
        modes=", ".join(f"'{mode.upper()}'" for _, _, mode in relations),
        cap=cap,
        ttl=windows[-1],
        blob_age=blob_age_ms,
        # IPQS results are joined through the user: stored on, and read from, the user.
        blob_field=IPQS_FIELD if entity == "user" else "",
    )
    return LuaScript(source)
