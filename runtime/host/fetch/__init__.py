"""``fetch`` for scripts: ``unit.py`` is the unit (its op, limits, composition), ``guard.py``
the SSRF rules every address passes, ``client.py`` the pooled client that connects only to
checked addresses, ``settings.py`` its section of the settings.

Importing the package imports none of them: ``runtime.config`` takes the settings from here
without loading the HTTP client."""

HOPS_HEADER = "x-wexec-hops"
"""How many scripts a request has already passed through: set on every request a fetch makes."""
MAX_HOPS = 16
"""Past this many hops the gateway answers 508 (``runtime/http/gateway.py``)."""
