"""A second execution port and market-metadata source, on ccxt's unified API (see execution.py)."""
