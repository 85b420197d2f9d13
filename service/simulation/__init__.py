"""The traffic simulator's parts; ``service.simulate`` is the public entry point.

- ``world``: one run's window, dials, per-actor RNGs, the customer roster, ``Actor``
- ``legit`` / ``fraud``: the eleven populations, one lazily started actor per person or scheme
- ``visit``: what happened on one page load (the ground truth) and IPQS's view of it
- ``devices`` / ``geo`` / ``ids`` / ``clock``: browsers, networks and IPs, identifiers, time
- ``velocity``: Fingerprint's Velocity counts, derived from the stream itself
- ``fingerprint`` / ``bodies`` / ``wire``: the signals that fire and the vendors' exact JSON
"""
