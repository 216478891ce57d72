"""Shortcut so plugins can write ``from kinetic_empire.indicators import ema``."""

from .strategy.indicators import adx, atr, bollinger, donchian, ema, macd, psar, rsi, sma

__all__ = ["adx", "atr", "bollinger", "donchian", "ema", "macd", "psar", "rsi", "sma"]
