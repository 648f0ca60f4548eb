"""HTTP for alpaca-py's REST clients: a timeout on every call, retries with backoff.

alpaca-py calls ``requests.Session.request`` with no timeout (a stalled server hangs it
forever) and retries only 429 and 504, with a fixed 3 s sleep. ``ResilientSession`` replaces a
client's session: every request gets ``timeout=(connect, read)``, and 429, 5xx, timeouts and
dropped connections are retried with exponential backoff. Retrying an order submit is safe
because every mtbt order carries a unique ``client_order_id``: a retry of an order that did
reach the broker is refused as a duplicate, and the broker looks the order up by that id.

The environment's proxy and CA-bundle settings (``HTTPS_PROXY``, ``NO_PROXY``,
``REQUESTS_CA_BUNDLE``, ...) are read once per host and session, not on every request:
``requests`` scans the whole environment each time, about 0.6 ms per request on the order
path of the paper trader.
"""
from __future__ import annotations

import logging
import time

import requests

log = logging.getLogger("mtbt.http")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ResilientSession(requests.Session):
    """A Session with a default timeout and retries (see the module docstring).

    Parameters
    ----------
    timeout : (connect, read) seconds given to every request that has none.
    attempts : requests in all for one call (1: no retry).
    backoff : first wait in seconds; each further wait doubles, up to ``max_wait``.
    """

    def __init__(self, timeout: tuple[float, float] = (5.0, 10.0), attempts: int = 6,
                 backoff: float = 0.25, max_wait: float = 4.0) -> None:
        super().__init__()
        self.timeout, self.attempts = timeout, max(1, attempts)
        self.backoff, self.max_wait = backoff, max_wait
        self.retries = 0          # retries made so far (for the session log)
        self._environment: dict[str, dict] = {}    # scheme://host -> requests' settings

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # noqa: ANN001
        """requests' settings from the environment, read once per host (see the module
        docstring); a call that passes its own settings is merged afresh."""
        if proxies or stream is not None or verify is not None or cert is not None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        origin = "/".join(url.split("/", 3)[:3])
        settings = self._environment.get(origin)
        if settings is None:
            settings = self._environment[origin] = super().merge_environment_settings(
                url, proxies, stream, verify, cert)
        return {key: (dict(value) if isinstance(value, dict) else value)
                for key, value in settings.items()}

    def request(self, method, url, *args, **kwargs):  # noqa: ANN001 - requests' signature
        kwargs.setdefault("timeout", self.timeout)
        path = url.split("?", 1)[0].split("/", 3)[-1]
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            try:
                response = super().request(method, url, *args, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if last:
                    raise
                why = type(exc).__name__
            else:
                if response.status_code not in RETRY_STATUSES or last:
                    return response
                why = f"HTTP {response.status_code}"
            wait = min(self.max_wait, self.backoff * 2 ** (attempt - 1))
            self.retries += 1
            log.warning("%s /%s: %s; retry %d/%d in %.2f s", method, path, why, attempt,
                        self.attempts - 1, wait)
            time.sleep(wait)
        raise AssertionError("unreachable")


def harden(client, session: ResilientSession) -> None:
    """Give an alpaca-py REST client ``session`` and switch its own retry off."""
    client._session.close()
    client._session = session
    client._retry = 0
