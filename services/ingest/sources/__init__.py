"""Where bars come from: live yfinance, replayed data files, replayed stream recordings."""
