"""Funding hedge: a short perpetual that offsets a spot holding, rebalanced on drift, funding tallied."""

import logging

from kinetic_empire import Param, Strategy

log = logging.getLogger(__name__)


class FundingHedge(Strategy):
    """Keeps a short futures position equal to ``spot_qty`` coins held in spot (a treasury), so the pair's
    price moves cancel out, and tops it up or trims it when it drifts more than ``drift`` from that size.

    With a positive funding rate the short receives funding every settlement: the strategy tallies an
    estimate in ``self.state`` (which survives a restart), from the mark price and the rate known at the
    last mark update before each settlement. Live that is Binance's predicted rate, the one applied; in a
    backtest it is the previous settled rate. The report's Funding line is the exchange's exact figure.
    """

    timeframe = "1h"
    add_to_position = True  # a top-up is one more sell() while short
    spot_qty = Param(1000.0, "coins held in spot to hedge", min=0.0)
    drift = Param(0.05, "rebalance when the short is off the holding by more than this fraction", min=0.0, max=1.0)

    def on_start(self):
        for key, value in (("rebalances", 0), ("settlements", 0), ("funding", 0.0), ("next_settlement", 0),
                           ("rate", 0.0)):
            self.state.setdefault(key, value)

    def on_kline(self, kline):
        size = self.position.size
        gap = -self.spot_qty - size  # < 0: the short is too small; > 0: too large
        if abs(gap) <= self.drift * self.spot_qty:
            return
        self.state["rebalances"] += 1
        if gap < 0:
            self.sell(quantity=-gap, tag="hedge")
        else:
            self.reduce(min(1.0, gap / -size), tag="trim")

    def on_mark_price(self, update):
        due = self.state["next_settlement"]
        if due and update.ts_event >= due and self.position:
            # what a position pays at a settlement: quantity x mark x rate (a short receives a positive rate)
            self.state["funding"] += -self.position.size * update.mark_price * self.state["rate"]
            self.state["settlements"] += 1
        self.state["next_settlement"] = self.next_funding_time
        self.state["rate"] = self.funding_rate

    def on_stop(self):
        funding = self.state["funding"]
        log.info("%s hedge: %s %.4f USDT funding over %d settlements (estimate), %d rebalances", self.symbol,
                 "received" if funding >= 0 else "paid", abs(funding), self.state["settlements"],
                 self.state["rebalances"])
