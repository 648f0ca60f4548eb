"""``mtbt dashboard``: serve a read-only page of the latest (or one) paper session."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``dashboard`` command to the top-level parser."""
    cmd = sub.add_parser(
        "dashboard", help="a web page of a paper session (read-only, refreshes itself)",
        description="Serve a page of the latest paper session in --log-dir (or --session): "
                    "today's equity curve, open trades with stage, stop and target, working "
                    "orders, regime/VIX/ATR%%, alerts, bar-to-order latency and the streams' "
                    "connection. It only reads the session's files and the state file "
                    "(read-only), so it runs beside 'mtbt paper' or after it. Bound to "
                    "127.0.0.1 it needs no token; bound elsewhere every request must carry "
                    "one: MTBT_DASHBOARD_TOKEN, or a random one printed once at start.")
    cmd.add_argument("--log-dir", default="logs/live_trading", metavar="DIR",
                     help="the paper session's log folder (default: logs/live_trading)")
    cmd.add_argument("--session", metavar="ID",
                     help="a session id, PAPER_YYYYMMDD_HHMMSS (default: the latest, followed "
                          "as new sessions start)")
    cmd.add_argument("--state", metavar="FILE",
                     help="the state file, opened read-only (default: <log-dir>/state.sqlite)")
    cmd.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1: this machine only)")
    cmd.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    cmd.add_argument("--refresh", type=float, default=2.0, metavar="SECONDS",
                     help="seconds between the page's refreshes (default 2)")
    cmd.set_defaults(func=cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from mtbt.live.dashboard import make_server, token_for

    token, generated = token_for(args.host)
    server = make_server(args.log_dir, host=args.host, port=args.port, session=args.session,
                         state_path=args.state, token=token, refresh=args.refresh)
    url = server.url + (f"?token={token}" if generated else "")
    following = args.session or f"the latest session (now {server.reader.session})"
    print(f"mtbt dashboard of {following} in {args.log_dir}: {url}", flush=True)
    if token and not generated:
        print("every request needs the token of MTBT_DASHBOARD_TOKEN (?token=...)", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        print("mtbt dashboard: stopped")
    finally:
        server.server_close()
    return 0
