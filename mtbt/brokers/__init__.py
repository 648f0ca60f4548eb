"""The backtest broker: backtrader's BackBroker with option structures marked to model."""
