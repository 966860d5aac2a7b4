"""The offline backtest: replay a trace through Harmony and the baselines on simulated pools."""
