"""Where the Alpaca clients connect, and the paper-only guard.

alpaca-py's ``url_override`` bypasses ``paper=True``, so every URL is checked here before
any client is made: trading must go to Alpaca's paper service or a local host
(127.0.0.1 / localhost, the replay simulator), data to Alpaca's data service or a local
host. Endpoints may be redirected with ``MTBT_ALPACA_TRADING_URL``, ``MTBT_ALPACA_DATA_URL``,
``MTBT_ALPACA_STREAM_URL`` and ``MTBT_ALPACA_DATA_STREAM_URL``. Keys come from
``ALPACA_API_KEY`` / ``ALPACA_SECRET_KEY`` only.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from mtbt.errors import BrokerError, ConfigError

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
PAPER_HOSTS = frozenset({"paper-api.alpaca.markets"})
DATA_HOSTS = frozenset({"data.alpaca.markets", "data.sandbox.alpaca.markets",
                        "stream.data.alpaca.markets", "stream.data.sandbox.alpaca.markets"})
_ENV = {"trading": "MTBT_ALPACA_TRADING_URL", "data": "MTBT_ALPACA_DATA_URL",
        "trade_stream": "MTBT_ALPACA_STREAM_URL", "data_stream": "MTBT_ALPACA_DATA_STREAM_URL"}


@dataclass(frozen=True)
class Endpoints:
    """Where each client connects (REST base URLs without ``/v2``; full stream URLs)."""

    trading: str = "https://paper-api.alpaca.markets"
    data: str = "https://data.alpaca.markets"
    trade_stream: str = "wss://paper-api.alpaca.markets/stream"
    data_stream: str = "wss://stream.data.alpaca.markets/v2/iex"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Endpoints:
        """The defaults, replaced by any ``MTBT_ALPACA_*_URL`` that is set."""
        return cls(**{key: env[name].rstrip("/") for key, name in _ENV.items()
                      if env.get(name)})

    def check(self) -> None:
        """Raise ``BrokerError`` unless trading goes to a paper or local host and data to
        Alpaca's data service or a local host."""
        for key in ("trading", "trade_stream", "data", "data_stream"):
            url = getattr(self, key)
            host = urlsplit(url).hostname or ""
            allowed = LOCAL_HOSTS | (PAPER_HOSTS if key.startswith("trad") else DATA_HOSTS)
            if host not in allowed:
                kind = ("a live-money endpoint" if host.endswith("alpaca.markets")
                        else "not an Alpaca paper or local endpoint")
                raise BrokerError(f"refusing to start: {_ENV[key]}={url} is {kind}; "
                                  "mtbt trades Alpaca paper accounts only")

    @property
    def local(self) -> bool:
        return all(urlsplit(getattr(self, k)).hostname in LOCAL_HOSTS for k in _ENV)


def keys_from_env(env: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """(key id, secret) from ``ALPACA_API_KEY`` / ``ALPACA_SECRET_KEY``."""
    missing = [name for name in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY") if not env.get(name)]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} not set: export your Alpaca paper "
                          "account's keys (or rehearse without keys: mtbt paper --replay "
                          "BARS.parquet)")
    return env["ALPACA_API_KEY"], env["ALPACA_SECRET_KEY"]
