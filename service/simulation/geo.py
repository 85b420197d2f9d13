"""Where simulated traffic comes from: countries, cities, networks and the IPs inside them.

Every network owns a few /16 blocks and every address is drawn inside one of them, so an IP's
country, ASN and datacenter flag never contradict each other across events. The blocks look
like the operators' real ranges but are a simulation: nothing is looked up.

Time zones carry their summer offsets, because the default simulated window is early October
when both the US and Europe still observe daylight saving time.
"""

from __future__ import annotations

import itertools
import random
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

NetworkKind = Literal["isp", "mobile", "hosting", "relay"]

_CONTINENTS = {
    "NA": "North America",
    "SA": "South America",
    "EU": "Europe",
    "AS": "Asia",
    "AF": "Africa",
    "OC": "Oceania",
}


# eq=False: identity hashing, since cities and networks key per-event lookups.
@dataclass(frozen=True, slots=True, eq=False)
class City:
    country: str
    country_name: str
    continent: str
    name: str
    subdivision_code: str
    subdivision: str
    timezone: str
    utc_offset_min: int
    latitude: float
    longitude: float
    postal_code: str


@dataclass(frozen=True, slots=True, eq=False)
class Network:
    asn: int
    name: str
    kind: NetworkKind
    country: str
    datacenter: str  # hosting provider's name; empty for eyeball networks
    blocks: tuple[tuple[int, int], ...]  # the /16s, as their first two octets

    @property
    def asn_type(self) -> str:
        return "hosting" if self.kind == "hosting" else "isp"


@dataclass(frozen=True, slots=True)
class Ip:
    """One address with everything an IP-intelligence lookup would say about it."""

    address: str
    network: Network
    block: int  # index into network.blocks
    city: City
    public_vpn: bool = False
    relay: bool = False
    proxy: str | None = None  # detected proxy type ("residential" / "data_center")
    proxy_provider: str | None = None
    # A residential-proxy exit, detected by Fingerprint (``proxy`` set) or not: IPQS judges
    # the same address from its own honeypots and abuse reports, independently.
    proxy_pool: bool = False
    tor: bool = False
    email_spam: bool = False
    attack_source: bool = False

    @property
    def datacenter(self) -> bool:
        return self.network.kind == "hosting"


_COUNTRIES: dict[str, tuple[str, str]] = {
    "US": ("United States", "NA"),
    "CA": ("Canada", "NA"),
    "MX": ("Mexico", "NA"),
    "BR": ("Brazil", "SA"),
    "GB": ("United Kingdom", "EU"),
    "DE": ("Germany", "EU"),
    "FR": ("France", "EU"),
    "NL": ("Netherlands", "EU"),
    "ES": ("Spain", "EU"),
    "IT": ("Italy", "EU"),
    "PL": ("Poland", "EU"),
    "SE": ("Sweden", "EU"),
    "CH": ("Switzerland", "EU"),
    "FI": ("Finland", "EU"),
    "RO": ("Romania", "EU"),
    "UA": ("Ukraine", "EU"),
    "RU": ("Russia", "EU"),
    "AU": ("Australia", "OC"),
    "IN": ("India", "AS"),
    "VN": ("Vietnam", "AS"),
    "ID": ("Indonesia", "AS"),
    "PH": ("Philippines", "AS"),
    "PK": ("Pakistan", "AS"),
    "SG": ("Singapore", "AS"),
    "JP": ("Japan", "AS"),
    "NG": ("Nigeria", "AF"),
}

# country, city, subdivision code, subdivision, time zone, UTC offset (min), lat, lon, postal code
_CITY_ROWS: tuple[tuple[str, str, str, str, str, int, float, float, str], ...] = (
    ("US", "New York", "NY", "New York", "America/New_York", -240, 40.7128, -74.006, "10001"),
    ("US", "Atlanta", "GA", "Georgia", "America/New_York", -240, 33.749, -84.388, "30303"),
    ("US", "Chicago", "IL", "Illinois", "America/Chicago", -300, 41.8781, -87.6298, "60601"),
    ("US", "Houston", "TX", "Texas", "America/Chicago", -300, 29.7604, -95.3698, "77002"),
    ("US", "Denver", "CO", "Colorado", "America/Denver", -360, 39.7392, -104.9903, "80202"),
    (
        "US",
        "Los Angeles",
        "CA",
        "California",
        "America/Los_Angeles",
        -420,
        34.0522,
        -118.2437,
        "90012",
    ),
    ("US", "Seattle", "WA", "Washington", "America/Los_Angeles", -420, 47.6062, -122.3321, "98101"),
    ("CA", "Toronto", "ON", "Ontario", "America/Toronto", -240, 43.6532, -79.3832, "M5H"),
    ("CA", "Montreal", "QC", "Quebec", "America/Toronto", -240, 45.5019, -73.5674, "H2Y"),
    (
        "CA",
        "Vancouver",
        "BC",
        "British Columbia",
        "America/Vancouver",
        -420,
        49.2827,
        -123.1207,
        "V6B",
    ),
    (
        "MX",
        "Mexico City",
        "CMX",
        "Mexico City",
        "America/Mexico_City",
        -360,
        19.4326,
        -99.1332,
        "06000",
    ),
    (
        "BR",
        "Sao Paulo",
        "SP",
        "Sao Paulo",
        "America/Sao_Paulo",
        -180,
        -23.5505,
        -46.6333,
        "01000-000",
    ),
    ("GB", "London", "ENG", "England", "Europe/London", 60, 51.5072, -0.1276, "EC1A"),
    ("GB", "Manchester", "ENG", "England", "Europe/London", 60, 53.4808, -2.2426, "M1"),
    ("GB", "Glasgow", "SCT", "Scotland", "Europe/London", 60, 55.8642, -4.2518, "G1"),
    ("DE", "Berlin", "BE", "Land Berlin", "Europe/Berlin", 120, 52.52, 13.405, "10115"),
    ("DE", "Munich", "BY", "Bavaria", "Europe/Berlin", 120, 48.1351, 11.582, "80331"),
    ("DE", "Hamburg", "HH", "Hamburg", "Europe/Berlin", 120, 53.5511, 9.9937, "20095"),
    ("DE", "Frankfurt am Main", "HE", "Hesse", "Europe/Berlin", 120, 50.1109, 8.6821, "60311"),
    ("FR", "Paris", "IDF", "Ile-de-France", "Europe/Paris", 120, 48.8566, 2.3522, "75001"),
    ("FR", "Lyon", "ARA", "Auvergne-Rhone-Alpes", "Europe/Paris", 120, 45.764, 4.8357, "69001"),
    ("NL", "Amsterdam", "NH", "North Holland", "Europe/Amsterdam", 120, 52.3676, 4.9041, "1012"),
    ("NL", "Rotterdam", "ZH", "South Holland", "Europe/Amsterdam", 120, 51.9244, 4.4777, "3011"),
    ("ES", "Madrid", "MD", "Madrid", "Europe/Madrid", 120, 40.4168, -3.7038, "28013"),
    ("ES", "Barcelona", "CT", "Catalonia", "Europe/Madrid", 120, 41.3874, 2.1686, "08002"),
    ("IT", "Rome", "62", "Lazio", "Europe/Rome", 120, 41.9028, 12.4964, "00184"),
    ("IT", "Milan", "25", "Lombardy", "Europe/Rome", 120, 45.4642, 9.19, "20121"),
    ("PL", "Warsaw", "14", "Mazovia", "Europe/Warsaw", 120, 52.2297, 21.0122, "00-001"),
    (
        "SE",
        "Stockholm",
        "AB",
        "Stockholm County",
        "Europe/Stockholm",
        120,
        59.3293,
        18.0686,
        "111 20",
    ),
    ("CH", "Zurich", "ZH", "Zurich", "Europe/Zurich", 120, 47.3769, 8.5417, "8001"),
    ("FI", "Helsinki", "18", "Uusimaa", "Europe/Helsinki", 180, 60.1699, 24.9384, "00100"),
    ("RO", "Bucharest", "B", "Bucuresti", "Europe/Bucharest", 180, 44.4268, 26.1025, "010011"),
    ("UA", "Kyiv", "30", "Kyiv City", "Europe/Kyiv", 180, 50.4501, 30.5234, "01001"),
    ("RU", "Moscow", "MOW", "Moscow", "Europe/Moscow", 180, 55.7558, 37.6173, "101000"),
    ("AU", "Sydney", "NSW", "New South Wales", "Australia/Sydney", 600, -33.8688, 151.2093, "2000"),
    ("AU", "Melbourne", "VIC", "Victoria", "Australia/Melbourne", 600, -37.8136, 144.9631, "3000"),
    ("IN", "Mumbai", "MH", "Maharashtra", "Asia/Kolkata", 330, 19.076, 72.8777, "400001"),
    ("IN", "Bengaluru", "KA", "Karnataka", "Asia/Kolkata", 330, 12.9716, 77.5946, "560001"),
    (
        "VN",
        "Ho Chi Minh City",
        "SG",
        "Ho Chi Minh",
        "Asia/Ho_Chi_Minh",
        420,
        10.8231,
        106.6297,
        "700000",
    ),
    ("ID", "Jakarta", "JK", "Jakarta", "Asia/Jakarta", 420, -6.2088, 106.8456, "10110"),
    ("PH", "Manila", "00", "Metro Manila", "Asia/Manila", 480, 14.5995, 120.9842, "1000"),
    ("PK", "Karachi", "SD", "Sindh", "Asia/Karachi", 300, 24.8607, 67.0011, "74000"),
    (
        "SG",
        "Singapore",
        "01",
        "Central Singapore",
        "Asia/Singapore",
        480,
        1.3521,
        103.8198,
        "018956",
    ),
    ("JP", "Tokyo", "13", "Tokyo", "Asia/Tokyo", 540, 35.6762, 139.6503, "100-0001"),
    ("NG", "Lagos", "LA", "Lagos", "Africa/Lagos", 60, 6.5244, 3.3792, "100001"),
)

CITIES: dict[str, tuple[City, ...]] = {}
for _row in _CITY_ROWS:
    _name, _continent = _COUNTRIES[_row[0]]
    _city = City(_row[0], _name, _continent, *_row[1:])
    CITIES[_row[0]] = (*CITIES.get(_row[0], ()), _city)

# asn, name, kind, country, datacenter name, /16 blocks
_NETWORK_ROWS: tuple[tuple[int, str, NetworkKind, str, str, tuple[tuple[int, int], ...]], ...] = (
    (7922, "COMCAST-7922", "isp", "US", "", ((73, 12), (73, 45), (73, 98), (73, 161), (98, 210))),
    (7018, "ATT-INTERNET4", "isp", "US", "", ((99, 33), (99, 104), (107, 131), (108, 84))),
    (701, "UUNET", "isp", "US", "", ((71, 105), (71, 178), (72, 69), (96, 248))),
    (20115, "CHARTER-20115", "isp", "US", "", ((24, 176), (47, 33), (66, 189), (97, 93))),
    (21928, "T-MOBILE-AS21928", "mobile", "US", "", ((172, 56), (172, 58))),
    (22394, "CELLCO", "mobile", "US", "", ((174, 205), (174, 226))),
    (812, "ROGERS-COMMUNICATIONS", "isp", "CA", "", ((99, 229), (174, 112))),
    (577, "BACOM", "isp", "CA", "", ((70, 26), (142, 114))),
    (8151, "UNINET", "isp", "MX", "", ((187, 189), (201, 141))),
    (28573, "Claro NXT Telecomunicacoes Ltda", "isp", "BR", "", ((177, 96), (189, 62))),
    (2856, "BT-UK-AS", "isp", "GB", "", ((81, 129), (86, 144), (86, 178))),
    (5089, "NTL", "isp", "GB", "", ((82, 11), (82, 36))),
    (12576, "EE", "mobile", "GB", "", ((31, 94), (31, 111))),
    (3320, "DTAG", "isp", "DE", "", ((79, 200), (84, 150), (87, 146), (91, 52))),
    (3209, "VODANET", "isp", "DE", "", ((88, 70), (95, 88))),
    (6805, "TDDE-ASN1", "mobile", "DE", "", ((176, 0), (176, 3))),
    (3215, "Orange", "isp", "FR", "", ((90, 12), (90, 45), (92, 184))),
    (12322, "PROXAD", "isp", "FR", "", ((78, 192), (88, 121))),
    (1136, "KPN", "isp", "NL", "", ((77, 160), (145, 53))),
    (33915, "TNF-AS", "isp", "NL", "", ((84, 104), (94, 208))),
    (3352, "TELEFONICA_DE_ESPANA", "isp", "ES", "", ((83, 44), (88, 12))),
    (3269, "ASN-IBSNAZ", "isp", "IT", "", ((79, 24), (93, 45))),
    (5617, "TPNET", "isp", "PL", "", ((83, 27), (83, 30))),
    (3301, "TELIANET-SWEDEN", "isp", "SE", "", ((78, 67), (81, 224))),
    (3303, "SWISSCOM", "isp", "CH", "", ((85, 0), (178, 197))),
    (8708, "RCS-RDS", "isp", "RO", "", ((86, 120), (89, 136))),
    (15895, "KSNET-AS", "isp", "UA", "", ((46, 211), (176, 36))),
    (12389, "ROSTELECOM-AS", "isp", "RU", "", ((95, 24), (178, 66))),
    (1221, "ASN-TELSTRA", "isp", "AU", "", ((101, 160), (120, 148))),
    (4804, "MPX-AS", "isp", "AU", "", ((49, 176), (211, 30))),
    (24560, "AIRTELBROADBAND-AS-AP", "isp", "IN", "", ((122, 161), (182, 68))),
    (55836, "RELIANCEJIO-IN", "mobile", "IN", "", ((49, 36), (157, 32))),
    (7552, "VIETEL-AS-AP", "isp", "VN", "", ((27, 72), (171, 224))),
    (7713, "TELKOMNET-AS-AP", "isp", "ID", "", ((36, 68), (180, 252))),
    (9299, "IPG-AS-AP", "isp", "PH", "", ((112, 198), (124, 106))),
    (45595, "PKTELECOM-AS-PK", "isp", "PK", "", ((39, 40), (119, 152))),
    (29465, "MTN-NG-AS", "isp", "NG", "", ((102, 89), (197, 210))),
    (14061, "DIGITALOCEAN-ASN", "hosting", "US", "DigitalOcean", ((159, 65), (167, 99))),
    (14061, "DIGITALOCEAN-ASN", "hosting", "NL", "DigitalOcean", ((188, 166), (146, 190))),
    (14061, "DIGITALOCEAN-ASN", "hosting", "SG", "DigitalOcean", ((128, 199), (159, 223))),
    (16509, "AMAZON-02", "hosting", "US", "Amazon AWS", ((3, 80), (18, 204), (44, 192), (54, 210))),
    (16509, "AMAZON-02", "hosting", "DE", "Amazon AWS", ((3, 120), (18, 184))),
    (24940, "HETZNER-AS", "hosting", "DE", "Hetzner Online", ((88, 198), (136, 243))),
    (24940, "HETZNER-AS", "hosting", "FI", "Hetzner Online", ((65, 108), (95, 217))),
    (16276, "OVH", "hosting", "FR", "OVH SAS", ((51, 68), (145, 239))),
    (16276, "OVH", "hosting", "CA", "OVH SAS", ((158, 69), (192, 99))),
    (20473, "AS-CHOOPA", "hosting", "US", "Vultr", ((45, 32), (149, 28))),
    (20473, "AS-CHOOPA", "hosting", "JP", "Vultr", ((45, 76), (139, 180))),
    (63949, "AKAMAI-LINODE-AP", "hosting", "US", "Linode", ((45, 56), (172, 104))),
    (9009, "M247", "hosting", "RO", "M247 Europe", ((185, 156), (89, 45))),
    (9009, "M247", "hosting", "GB", "M247 Europe", ((89, 238), (193, 176))),
    (9009, "M247", "hosting", "US", "M247 Europe", ((38, 132), (146, 70))),
    (60068, "CDN77", "hosting", "GB", "Datacamp Limited", ((185, 59), (212, 102))),
    (60068, "CDN77", "hosting", "DE", "Datacamp Limited", ((195, 181), (156, 146))),
    (60068, "CDN77", "hosting", "CH", "Datacamp Limited", ((84, 17), (37, 120))),
    (60068, "CDN77", "hosting", "US", "Datacamp Limited", ((143, 244), (169, 150))),
    (60068, "CDN77", "hosting", "SE", "Datacamp Limited", ((185, 65), (217, 138))),
    (60729, "ZWIEBELFREUNDE", "hosting", "DE", "Stiftung Erneuerbare Freiheit", ((185, 220),)),
    (
        208323,
        "APPLIEDPRIVACY-AS",
        "hosting",
        "NL",
        "Foundation for Applied Privacy",
        ((109, 70), (107, 189)),
    ),
    (36183, "AKAMAI-AS", "relay", "US", "", ((172, 224), (172, 225))),
    (36183, "AKAMAI-AS", "relay", "GB", "", ((172, 226),)),
    (36183, "AKAMAI-AS", "relay", "DE", "", ((172, 227),)),
    (13335, "CLOUDFLARENET", "relay", "FR", "", ((104, 28),)),
    (13335, "CLOUDFLARENET", "relay", "CA", "", ((104, 29),)),
    (13335, "CLOUDFLARENET", "relay", "AU", "", ((104, 30),)),
    (36183, "AKAMAI-AS", "relay", "NL", "", ((172, 228),)),
    (36183, "AKAMAI-AS", "relay", "ES", "", ((172, 229),)),
    (36183, "AKAMAI-AS", "relay", "IT", "", ((172, 230),)),
    (36183, "AKAMAI-AS", "relay", "SE", "", ((172, 231),)),
    (36183, "AKAMAI-AS", "relay", "PL", "", ((172, 232),)),
)

NETWORKS = tuple(Network(*row) for row in _NETWORK_ROWS)


def _check_blocks() -> None:
    owners: dict[tuple[int, int], Network] = {}
    for network in NETWORKS:
        for block in network.blocks:
            if block in owners:
                raise ValueError(f"/16 {block} is in {owners[block].name} and {network.name}")
            owners[block] = network


# One owner per /16 is what keeps an address's ASN and country stable across events.
_check_blocks()


def _by(kind: NetworkKind) -> dict[str, tuple[Network, ...]]:
    out: dict[str, tuple[Network, ...]] = {}
    for network in NETWORKS:
        if network.kind == kind:
            out[network.country] = (*out.get(network.country, ()), network)
    return out


ISPS = _by("isp")
MOBILE = _by("mobile")
RELAYS = _by("relay")
HOSTING = tuple(n for n in NETWORKS if n.kind == "hosting")
# Commercial VPNs rent exits from a few hosts; Tor exits cluster in privacy foundations' ASNs.
VPN_HOSTS = tuple(n for n in HOSTING if n.asn in (9009, 60068, 14061, 20473))
TOR_HOSTS = tuple(n for n in HOSTING if n.asn in (60729, 208323, 24940))
BOT_HOSTS = tuple(n for n in HOSTING if n.asn in (14061, 16509, 24940, 16276, 20473, 63949))

# Where legitimate customers of a Western web shop live, weighted.
HOME_COUNTRIES = ("US", "GB", "DE", "FR", "CA", "NL", "ES", "IT", "AU", "PL", "SE", "BR", "MX")
HOME_WEIGHTS = tuple(itertools.accumulate((36, 12, 11, 7, 7, 4, 5, 5, 5, 3, 2, 1.5, 1.5)))
# Where organised fraud operators sit (they reach the shop through proxies anyway).
FRAUD_COUNTRIES = ("NG", "VN", "ID", "RU", "UA", "RO", "PH", "PK", "BR", "IN")
PROXY_PROVIDERS = ("Massive", "IPRoyal", "Oxylabs", "SOAX")


def home_city(rng: random.Random) -> City:
    country = rng.choices(HOME_COUNTRIES, cum_weights=HOME_WEIGHTS)[0]
    return rng.choice(CITIES[country])


def fraud_city(rng: random.Random) -> City:
    return rng.choice(CITIES[rng.choice(FRAUD_COUNTRIES)])


def _address(rng: random.Random, network: Network) -> tuple[str, int]:
    index = rng.randrange(len(network.blocks))
    a, b = network.blocks[index]
    return f"{a}.{b}.{rng.randrange(256)}.{rng.randint(1, 254)}", index


def residential(rng: random.Random, city: City, **flags: Any) -> Ip:
    """A home broadband address in ``city``; ``flags`` mark what IP intelligence knows of it."""
    network = rng.choice(ISPS[city.country])
    address, block = _address(rng, network)
    return Ip(address, network, block, city, **flags)


CGNAT_POOL = 6  # public addresses one carrier's NAT shows this shop per city


def cellular(rng: random.Random, city: City) -> Ip:
    """A carrier-grade NAT address; countries without a mobile network here fall back to ISPs.

    A carrier puts thousands of subscribers behind each public IPv4 address of its NAT, so
    the shop's mobile customers in one city arrive from a handful of addresses, shared
    with strangers (``CGNAT_POOL`` of them per carrier and city).
    """
    carriers = MOBILE.get(city.country)
    if not carriers:
        network = rng.choice(ISPS[city.country])
        address, block = _address(rng, network)
        return Ip(address, network, block, city)
    network = rng.choice(carriers)
    slot = rng.randrange(CGNAT_POOL)
    # The address is a function of (carrier, city, slot): the same for everyone in the run.
    digest = zlib.crc32(f"{network.asn}:{city.name}:{slot}".encode())
    block = digest % len(network.blocks)
    a, b = network.blocks[block]
    return Ip(f"{a}.{b}.{(digest >> 8) % 256}.{1 + (digest >> 16) % 254}", network, block, city)


def hosted(rng: random.Random, network: Network, **flags: Any) -> Ip:
    """An address in a datacenter; it geolocates to the provider's city in that country."""
    address, block = _address(rng, network)
    return Ip(address, network, block, CITIES[network.country][0], **flags)


def vpn_exit(rng: random.Random, country: str | None = None) -> Ip:
    """A commercial VPN exit, in ``country`` when a provider has one there."""
    hosts = [n for n in VPN_HOSTS if n.country == country] if country else []
    return hosted(rng, rng.choice(hosts or VPN_HOSTS), public_vpn=True)


def relay_exit(rng: random.Random, city: City) -> Ip:
    """A privacy-relay egress; relays keep the user's region, so the city stays the user's."""
    network = rng.choice(RELAYS.get(city.country) or RELAYS["US"])
    address, block = _address(rng, network)
    located = city if network.country == city.country else CITIES[network.country][0]
    return Ip(address, network, block, located, relay=True)


def tor_exit(rng: random.Random) -> Ip:
    return hosted(rng, rng.choice(TOR_HOSTS), tor=True)


def residential_proxy(rng: random.Random, country: str, detected: bool) -> Ip:
    """A residential-proxy exit: a real home line, flagged only when the vendor knows the pool."""
    return residential_proxy_in(rng, rng.choice(CITIES[country]), detected)


def residential_proxy_in(rng: random.Random, city: City, detected: bool) -> Ip:
    if not detected:
        return residential(rng, city, proxy_pool=True)
    return residential(
        rng,
        city,
        proxy="residential",
        proxy_provider=rng.choice(PROXY_PROVIDERS),
        proxy_pool=True,
    )


def v3_geolocation(city: City) -> msgspec.Raw:
    return _V3_GEO[city]


def v4_geolocation(city: City) -> msgspec.Raw:
    return _V4_GEO[city]


def _v3_geo(city: City) -> dict[str, Any]:
    return {
        "accuracyRadius": 20,
        "latitude": city.latitude,
        "longitude": city.longitude,
        "postalCode": city.postal_code,
        "timezone": city.timezone,
        "city": {"name": city.name},
        "country": {"code": city.country, "name": city.country_name},
        "continent": {"code": city.continent, "name": _CONTINENTS[city.continent]},
        "subdivisions": [{"isoCode": city.subdivision_code, "name": city.subdivision}],
    }


def _v4_geo(city: City) -> dict[str, Any]:
    return {
        "accuracy_radius": 20,
        "latitude": city.latitude,
        "longitude": city.longitude,
        "postal_code": city.postal_code,
        "timezone": city.timezone,
        "city_name": city.name,
        "country_code": city.country,
        "country_name": city.country_name,
        "continent_code": city.continent,
        "continent_name": _CONTINENTS[city.continent],
        "subdivisions": [{"iso_code": city.subdivision_code, "name": city.subdivision}],
    }


# Encoded once: the renderer splices these bytes into every body from that city instead of
# building and encoding the same geolocation per event.
_V3_GEO = {
    city: msgspec.Raw(msgspec.json.encode(_v3_geo(city)))
    for cities in CITIES.values()
    for city in cities
}
_V4_GEO = {
    city: msgspec.Raw(msgspec.json.encode(_v4_geo(city)))
    for cities in CITIES.values()
    for city in cities
}
