"""Identifiers shaped like the vendors' own, and people's names and e-mail addresses.

Every function takes the caller's ``random.Random``: nothing here owns randomness, so which
actor drew an id decides it and reruns reproduce it.
"""

from __future__ import annotations

import itertools
import random
import string

_ALPHANUMERIC = string.ascii_letters + string.digits
_LOWER = string.ascii_lowercase + string.digits
_BYTE_TO_CHAR = bytes(ord(_ALPHANUMERIC[byte % 62]) for byte in range(256))
_UNEVEN_BYTES = bytes(range(248, 256))

FIRST_NAMES = (
    "james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "david",
    "elizabeth", "william", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah",
    "daniel", "karen", "matthew", "emma", "oliver", "sophie", "lukas", "anna", "lea", "jonas",
    "camille", "louis", "chloe", "lucas", "sofia", "marco", "giulia", "pablo", "lucia", "jan",
    "eva", "noah", "mia", "liam", "olivia", "ethan", "ava", "mateo", "isabella", "hugo", "nina",
)  # fmt: skip
LAST_NAMES = (
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "martinez",
    "wilson", "anderson", "taylor", "thomas", "moore", "martin", "jackson", "white", "harris",
    "clark", "lewis", "walker", "young", "allen", "king", "wright", "scott", "green", "baker",
    "muller", "schmidt", "schneider", "fischer", "weber", "meyer", "dubois", "lefebvre", "moreau",
    "rossi", "russo", "ferrari", "fernandez", "lopez", "gonzalez", "nowak", "kowalski", "jansen",
    "devries", "andersson", "johansson", "murphy", "kelly", "oconnor", "campbell", "stewart",
)  # fmt: skip
# Reserved example domains (RFC 2606 style), weighted like a real free-mail mix: simulated
# addresses must never be someone's real inbox.
MAIL_DOMAINS = (
    "mail.example.com", "yahoo.example.com", "outlook.example.com", "hotmail.example.com",
    "icloud.example.com", "aol.example.com", "proton.example.org", "gmx.example.de",
    "web.example.de", "orange.example.fr", "libero.example.it", "bt.example.co.uk",
)  # fmt: skip
MAIL_WEIGHTS = tuple(itertools.accumulate((38, 10, 12, 8, 10, 2, 3, 4, 3, 3, 2, 2)))
# Throwaway inboxes: the tell of bulk sign-ups.
DISPOSABLE_DOMAINS = ("mailinator.com", "yopmail.com", "guerrillamail.com", "sharklasers.com")


def token(rng: random.Random, length: int) -> str:
    """``length`` uniformly drawn alphanumerics."""
    while True:
        # Random bytes mapped onto the 62 characters; 248 = 4 * 62, so dropping the bytes
        # above it keeps every character equally likely. Eight spare bytes nearly always
        # cover the drops; on the rare shortfall, draw again.
        chars = rng.randbytes(length + 8).translate(_BYTE_TO_CHAR, _UNEVEN_BYTES)
        if len(chars) >= length:
            return chars[:length].decode()


def visitor_id(rng: random.Random) -> str:
    """A Fingerprint visitorId: 20 alphanumerics."""
    return token(rng, 20)


def v3_request_id(rng: random.Random) -> str:
    """A legacy requestId: 20 alphanumerics, like ``Px6VxbRC6WBkA39yeNH3``."""
    return token(rng, 20)


def v4_event_id(rng: random.Random, time_ms: int) -> str:
    """A v4 event_id: the event's epoch milliseconds, a dot and six alphanumerics."""
    return f"{time_ms}.{token(rng, 6)}"


def ipqs_request_id(rng: random.Random) -> str:
    return token(rng, 10)


def sha256_hex(rng: random.Random) -> str:
    """IPQS documents device_id and guid as SHA-256 hashes: 64 hex digits."""
    return f"{rng.getrandbits(256):064x}"


def person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def email(rng: random.Random, first: str, last: str) -> str:
    domain = rng.choices(MAIL_DOMAINS, cum_weights=MAIL_WEIGHTS)[0]
    style = rng.randrange(4)
    if style == 0:
        local = f"{first}.{last}"
    elif style == 1:
        local = f"{first}{last}{rng.randint(1, 99)}"
    elif style == 2:
        local = f"{first[0]}{last}{rng.randint(60, 99) if rng.random() < 0.5 else ''}"
    else:
        local = f"{first}.{last}{rng.randint(1970, 2006)}"
    return f"{local}@{domain}"


def alias_email(rng: random.Random, base_local: str, index: int) -> str:
    """One more address for the same inbox or a throwaway one: how bulk sign-ups get e-mails."""
    style = rng.randrange(3)
    if style == 0:
        return f"{base_local}+{rng.choice(('promo', 'deal', 'x', 'shop'))}{index}@mail.example.com"
    if style == 1:
        # Gmail ignores dots, so each placement is a "new" address reaching one inbox.
        cut = rng.randint(1, max(1, len(base_local) - 1))
        return f"{base_local[:cut]}.{base_local[cut:]}{index}@mail.example.com"
    local = "".join(rng.choices(_LOWER, k=rng.randint(8, 12)))
    return f"{local}@{rng.choice(DISPOSABLE_DOMAINS)}"
