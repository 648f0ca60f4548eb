"""The Alpaca paper venue, on alpaca-py: everything that talks to Alpaca sits here.

- ``endpoints``: where each client connects, and the paper-only guard (a live-money or
  unknown endpoint is refused before any client is made); the keys from the environment;
- ``store``: ``AlpacaStore``, the clients and streams of one session (backtrader's store);
- ``broker``: ``AlpacaBroker``, backtrader orders executed by Alpaca (``orders``: specs,
  client order ids and alpaca-py requests; ``limits``: one-bar structure limit closes;
  ``books``: checkpoint and restore; ``late``: fills of exits mtbt had cancelled;
  ``reconcile``: positions against Alpaca's, orphans).

``AlpacaData``, the bar feed, is in ``feeds.alpaca_live``; the session that runs them is
``mtbt.live``.
"""
