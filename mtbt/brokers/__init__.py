"""Brokers: the backtest broker with option structures (and, later, Alpaca paper)."""
