"""mtbt: one wave-Renko trading system for backtests on parquet bars and Alpaca paper trading."""

__version__ = "0.1.0"
