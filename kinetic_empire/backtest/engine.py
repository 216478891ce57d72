"""The backtest composition root: the core a live run uses (:mod:`kinetic_empire.assembly`), with a
replay feed as the kline source and the simulated exchange behind a SimulatedBroker as the port.

feed (replay) → bus → [simulated exchange via SimulatedBroker, portfolio, risk manager, strategy runners]
strategy intents → risk manager → order requests → SimulatedBroker → exchange → events → bus
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np

from ..assembly import StrategySpec, build_core, resolve_strategies
from ..core.bus import EventBus
from ..core.clock import LiveClock, ReplayClock
from ..core.errors import ConfigError, DataError, KineticError
from ..core.rules import LeverageBrackets, SymbolRules
from ..core.timeframes import timeframe_ms
from ..data import KlineFrame, KlineStore, find_kline_files, load_klines, resample, validate
from ..data._util import format_ms
from ..data.validate import since_last_hole
from ..download.funding import load_funding
from ..exchange import ExchangeConfig, SimulatedExchange
from ..exchange.broker import SimulatedBroker
from ..portfolio import Portfolio
from ..resources import default_brackets, default_symbol_rules
from ..risk import RiskConfig, RiskManager
from ..strategy.act_mask import MaskGate
from ..strategy.group import GroupRunner, aligned_history
from ..strategy.registry import StrategyRegistry
from ..strategy.runner import StrategyRunner
from .config import BacktestConfig
from .direct import DirectFeeds
from .feed import ReplayFeed, Stream
from .lookahead import LookaheadError, check_lookahead
from .lookahead_decisions import check_decisions
from .markprice import MarketReplay, attach_market_hooks, load_mark_frames
from .skip import SkipPlan, attach_gates, verify_gates

log = logging.getLogger(__name__)


@dataclass
class BacktestResult:
    config: BacktestConfig
    portfolio: Portfolio
    exchange: SimulatedExchange
    timestamps: np.ndarray
    equity: np.ndarray
    closes: dict[str, np.ndarray]
    klines_processed: int
    elapsed_s: float
    runners: list[StrategyRunner] = field(default_factory=list)
    risk: RiskManager | None = None
    gaps: dict[str, int] = field(default_factory=dict)
    lookahead_checked: list[str] = field(default_factory=list)  # what --check-lookahead compared, when it passed
    mark_price: str = ""  # where the mark price came from (markprice.MarketReplay.note), for the report

    @property
    def klines_per_second(self) -> float:
        return self.klines_processed / self.elapsed_s if self.elapsed_s > 0 else float("inf")


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to replay for one symbol: the execution series and each strategy's series."""

    symbol: str
    execution: KlineFrame
    by_timeframe: dict[str, KlineFrame]


class Backtest:
    """One backtest run. ``frames`` lets callers (tests, benchmarks) pass klines directly."""

    fused_orders = True
    """False: every order takes the general path a live run takes (tests compare both, result by result)."""

    def __init__(
        self,
        config: BacktestConfig,
        registry: StrategyRegistry,
        *,
        frames: Mapping[str, KlineFrame] | None = None,
        rules: Mapping[str, SymbolRules] | None = None,
        brackets: Mapping[str, LeverageBrackets] | None = None,
        check_lookahead: bool = False,
        funding: Mapping[str, Mapping[int, Decimal]] | None = None,
        act_mask: str = "use",
    ) -> None:
        """``funding`` (from :meth:`load_data`) replaces reading the stores' funding rates. ``act_mask``: what
        to do with strategies' act masks, ``use``, ``verify`` or ``off`` (:mod:`kinetic_empire.strategy.act_mask`)."""
        self.act_mask = act_mask
        self.skip_plan: SkipPlan | None = None  # the last run's, when it jumped over idle klines
        self.act_gates: list[MaskGate] = []  # the last run's gated runners (skip counts, verify findings)
        self.config = config
        self.check_lookahead = check_lookahead
        self.lookahead_checked: list[str] = []
        self._registry = registry
        self._frames = dict(frames) if frames else None
        self._rules = rules if rules is not None else default_symbol_rules(full=True)
        self._brackets = brackets if brackets is not None else default_brackets()
        self._funding = {sym: dict(rates) for sym, rates in funding.items()} if funding is not None else None
        self.portfolio: Portfolio | None = None
        """The running backtest's portfolio once built, so a ``progress`` callback can read equity mid-run."""

    # ------------------------------------------------------------------------------------ setup
    def _load(self, symbol: str, timeframes: set[str]) -> _Plan:
        finest = min(timeframes, key=timeframe_ms)
        exec_tf = finest if self.config.execution_timeframe == "auto" else self.config.execution_timeframe
        if timeframe_ms(exec_tf) > timeframe_ms(finest):
            raise ConfigError(
                "backtest.execution_timeframe",
                f"{exec_tf} is coarser than the {finest} strategy timeframe on {symbol}",
                self.config.source,
            )
        if self._frames is not None:
            if symbol not in self._frames:
                raise DataError("<frames>", "files", f"no klines given for {symbol}")
            base = self._frames[symbol].between(None, self.config.end)
        else:
            base = self._load_files(symbol, exec_tf)
        execution = base if base.timeframe == exec_tf else resample(base, exec_tf)
        by_tf = {tf: execution if tf == exec_tf else resample(execution, tf) for tf in timeframes}
        return _Plan(symbol, execution, by_tf)

    def _stores(self) -> list[Path]:
        """Data paths that are parquet stores (``kinetic download`` / ``kinetic data import``)."""
        return [Path(p) for p in self.config.data if (Path(p) / "klines").is_dir()]

    def _funding_rates(self, symbols: list[str]) -> dict[str, dict[int, Decimal]]:
        """Historical funding rates from the stores, where downloaded; otherwise the constant applies."""
        rates: dict[str, dict[int, Decimal]] = {}
        for root in self._stores():
            for sym in symbols:
                series = load_funding(root, sym, self.config.start, self.config.end)
                if series:
                    rates.setdefault(sym, {}).update(series)
        return rates

    def _load_files(self, symbol: str, timeframe: str) -> KlineFrame:
        paths = [Path(p) for p in self.config.data]
        for p in paths:
            if not p.exists():
                raise ConfigError("backtest.data", f"{p} does not exist", self.config.source)
        stores = self._stores()
        for root in stores:
            for tf in (timeframe, "1m"):
                if KlineStore(root).series_dir(symbol, tf).is_dir():
                    frame = KlineStore(root).read(symbol, tf, end_ms=self.config.end)
                    return self._gap_checked(frame)
        paths = [p for p in paths if p not in stores]
        for tf in (timeframe, "1m"):
            has = any(find_kline_files(p, symbol, tf) if p.is_dir() else p.name.startswith(f"{symbol}-{tf}-")
                      for p in paths)  # fmt: skip
            if has:
                return self._gap_checked(load_klines(paths, symbol=symbol, timeframe=tf, end=self.config.end,
                                                     gap_policy="keep"))

        where = ", ".join(map(str, paths))
        raise DataError(where, "files", f"no {symbol} klines ({timeframe} or 1m) found; download or import them first")

    def _check_lookahead(self, runners: Sequence[StrategyRunner], plans: Mapping[str, _Plan]) -> None:
        """Decisions with and without the future, then sampled indicator values; LookaheadError on a leak.
        What was compared is kept in ``lookahead_checked`` for the summary."""
        for runner in runners:
            open_time, o, h, lo, c, v = _history(runner, plans)
            arrays = (o, h, lo, c, v)
            decided, checked = check_decisions(runner.strategy, arrays, open_time)
            if decided:
                raise LookaheadError(decided)
            findings = check_lookahead(runner.strategy, arrays, open_time=open_time)
            if findings:
                raise LookaheadError(findings)
            self.lookahead_checked.append(f"{runner.strategy.strategy_name()} on {'+'.join(runner.symbols)}: {checked}")

    def _gap_checked(self, frame: KlineFrame) -> KlineFrame:
        """The gap policy judges the backtest's window; with ``error``, history before it starts after the
        last hole instead of refusing the run (the loaders' documented rule)."""
        if self.config.gap_policy == "error":
            frame = since_last_hole(frame, self.config.start)
        return validate(frame, gap_policy=self.config.gap_policy)

    def load_data(self) -> tuple[dict[str, KlineFrame], dict[str, dict[int, Decimal]]]:
        """Each symbol's execution klines and funding rates, loaded and validated once: pass them as
        ``frames=`` and ``funding=`` to many backtests of this config (the optimiser does); the result
        is the same as loading them in each."""
        tfs = self._timeframes(resolve_strategies(self.config.strategies, self._registry))
        frames = {sym: self._load(sym, t).execution for sym, t in tfs.items()}
        return frames, self._funding_rates(list(frames))

    def _timeframes(self, specs: tuple[StrategySpec, ...]) -> dict[str, set[str]]:
        tfs: dict[str, set[str]] = {}
        for spec in specs:
            for sym in spec.config.symbols:
                if sym not in self._rules:
                    raise ConfigError(
                        f"{spec.config.path}.symbols", f"unknown symbol {sym} (not in exchangeInfo)", self.config.source
                    )
                tfs.setdefault(sym, set()).add(spec.timeframe)
        return tfs

    # -------------------------------------------------------------------------------------- run
    def run(self, progress: Callable[[int, int], None] | None = None) -> BacktestResult:
        cfg = self.config
        specs = resolve_strategies(cfg.strategies, self._registry)  # fail before loading any data
        tfs = self._timeframes(specs)
        risk_config = RiskConfig.from_mapping(cfg.risk, "risk", default_margin_type=cfg.margin_type)
        risk_config.check_strategy_ids(self._registry.names(), cfg.source)
        risk_config.validate(self._rules, self._brackets, list(tfs))
        plans = {sym: self._load(sym, t) for sym, t in tfs.items()}
        for sym, plan in plans.items():  # a window outside the data: one clear line, before building anything
            e = plan.execution
            if len(e) == 0 or _start_index(e, cfg.start) >= len(e):
                have = f"it holds {format_ms(int(e.open_time[0]))} to {format_ms(int(e.open_time[-1]))}" if len(e) \
                    else "it holds none"
                window = f"from {format_ms(cfg.start)}" if cfg.start is not None else "in the window"
                raise DataError(e.source or sym, "window", f"no {sym} {e.timeframe} klines {window}"
                                + (f" to {format_ms(cfg.end)}" if cfg.end is not None else "") + f"; {have}")

        clock = ReplayClock()
        bus = EventBus()  # fail fast: a handler error stops the run with the event that caused it
        exchange = SimulatedExchange(
            self._rules,
            self._brackets,
            clock=clock,
            emit=bus.publish,
            config=ExchangeConfig(
                initial_balance=cfg.initial_balance,
                maker_fee=cfg.maker_fee,
                taker_fee=cfg.taker_fee,
                slippage_bps=cfg.slippage_bps,
                funding_rate=cfg.funding_rate,
                funding_rates=self._funding if self._funding is not None else self._funding_rates(list(plans)),
            ),
            symbols=list(plans),
        )
        executions = {sym: p.execution for sym, p in plans.items()}
        market = MarketReplay(bus, exchange, executions, load_mark_frames(
            self._stores(), {s: e.timeframe for s, e in executions.items()}, cfg.end))  # none: mark = last
        marked = market.attach_exchange()  # before the broker: those symbols' klines reach the exchange with marks
        exec_topics = [(sym, p.execution.timeframe) for sym, p in plans.items() if sym not in marked]
        replayed = [(sym, tf) for sym, p in plans.items() for tf in (p.execution.timeframe, *p.by_timeframe)]
        core = build_core(
            bus=bus,
            clock=clock,
            specs=specs,
            rules=self._rules,
            brackets=self._brackets,
            risk_config=risk_config,
            initial_balance=cfg.initial_balance,
            fee_rate_taker=cfg.taker_fee,
            fee_rate_maker=cfg.maker_fee,
            connect_port=lambda bus, _portfolio: SimulatedBroker(bus, exchange, clock, exec_topics),
            id_tag="b",
            price_topics=replayed,
        )
        self.portfolio = core.portfolio
        if self.fused_orders:  # the order path's short ways, same results (risk.fast_path, exchange.fast_fill)
            core.risk.use_fast_path()
            exchange.use_fused_orders()
            DirectFeeds(bus, core.portfolio, core.risk, core.port).attach(exchange)  # events with one reader: direct
        _hooks, wanted = attach_market_hooks(core.runners, bus, live=False)  # nothing unless a strategy asks
        if wanted:
            market.attach_events(wanted, exchange.config.funding_rates, cfg.funding_rate,
                                 exchange.config.funding_interval_ms)
        for sym, leverage in core.leverage.items():
            exchange.set_leverage(sym, leverage)
        for sym in plans:  # the run's margin type, or the symbol's from risk.margin_type
            if exchange.margin_type(sym) is not risk_config.margin_type_for(sym):
                exchange.set_margin_type(sym, risk_config.margin_type_for(sym))

        if self.check_lookahead:  # before any whole-history computation (see lookahead_decisions)
            self._check_lookahead(core.runners, plans)
        history_lengths: list[int] = []
        history_times: list[np.ndarray] = []
        for runner in core.runners:
            open_time, *prices = _history(runner, plans)
            runner.bind_history(open_time, *prices, start_index=_first_at(open_time, cfg.start))
            history_lengths.append(len(open_time))
            history_times.append(open_time)
        gates = self.act_gates = attach_gates(core.runners, history_times, self.act_mask)
        streams: list[Stream] = []
        published: set[tuple[str, str]] = set()
        for sym, plan in plans.items():
            series = {**plan.by_timeframe, plan.execution.timeframe: plan.execution}
            for tf, frame in sorted(series.items(), key=lambda kv: timeframe_ms(kv[0])):
                if (sym, tf) not in published:
                    published.add((sym, tf))
                    streams.append(Stream(frame, _start_index(frame, cfg.start)))

        runners = list(core.runners)
        skip = self.skip_plan = SkipPlan.build(bus, exchange, streams, gates) if self.act_mask == "use" else None
        feed = ReplayFeed(bus, clock, streams, skip=skip.run if skip is not None else None)
        total = feed.total
        for r in runners:
            r.start()
        began = LiveClock.monotonic()
        done = feed.run((lambda k: progress(k, total)) if progress else None)
        elapsed = LiveClock.monotonic() - began
        for r in runners:
            r.stop()
        verify_gates(gates)  # verify mode: the klines where a mask said False but on_kline acted
        for r, n in zip(runners, history_lengths):
            if r.position_in_history != n - 1:  # each runner must have seen exactly its own klines
                raise KineticError(f"{r.strategy_id} on {r.symbol}: replay out of step with its history")
            if isinstance(r, GroupRunner) and r.skipped:
                log.warning("%s: %d kline times skipped where one of %s had no kline", r.strategy_id, r.skipped,
                            ", ".join(r.symbols))

        timestamps, closes = _timeline(plans, cfg.start)
        portfolio = core.portfolio
        equity = portfolio.equity_curve(timestamps, market.equity_closes(timestamps, closes))
        gaps = {sym: p.execution.missing for sym, p in plans.items() if p.execution.missing}
        return BacktestResult(
            cfg, portfolio, exchange, timestamps, equity, closes, done, elapsed, runners, core.risk, gaps,
            list(self.lookahead_checked), market.note(),
        )


def _start_index(frame: KlineFrame, start: int | None) -> int:
    return _first_at(frame.open_time, start)


def _first_at(open_time: np.ndarray, start: int | None) -> int:
    return 0 if start is None else int(np.searchsorted(open_time, start, side="left"))


def _history(runner: StrategyRunner, plans: Mapping[str, _Plan]) -> tuple[np.ndarray, ...]:
    """A runner's history: open times and the five price arrays (a column per symbol for a group, on the
    times every symbol has a kline: see :mod:`kinetic_empire.strategy.group`)."""
    if not isinstance(runner, GroupRunner):
        f = plans[runner.symbol].by_timeframe[runner.timeframe]
        return f.open_time, f.open, f.high, f.low, f.close, f.volume
    frames = {sym: plans[sym].by_timeframe[runner.timeframe] for sym in runner.symbols}
    times, arrays = aligned_history({sym: (f.open_time, f.open, f.high, f.low, f.close, f.volume)
                                     for sym, f in frames.items()})
    if not len(times):
        held = "; ".join(f"{sym} {format_ms(int(f.open_time[0]))} to {format_ms(int(f.open_time[-1]))}"
                         for sym, f in frames.items() if len(f))
        raise DataError(", ".join(runner.symbols), "window", f"{runner.strategy_id}: no {runner.timeframe} kline time "
                        f"where every one of {', '.join(runner.symbols)} has a kline ({held})")
    return (times, *arrays)


def _timeline(plans: Mapping[str, _Plan], start: int | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Union of execution close times from ``start``, with each symbol's close carried forward."""
    parts = []
    for p in plans.values():
        e = p.execution
        parts.append(e.close_time[_start_index(e, start) :])
    if len(parts) == 1:
        timestamps = parts[0]
    elif parts:  # merge sorted series and drop repeats (np.unique hashes: far slower on millions)
        merged = np.sort(np.concatenate(parts), kind="stable")
        timestamps = merged[np.concatenate(([True], merged[1:] != merged[:-1]))]
    else:
        timestamps = np.array([], dtype=np.int64)
    closes: dict[str, np.ndarray] = {}
    if len(plans) == 1:  # the timeline is this symbol's own close times: its closes, as they are
        ((sym, p),) = plans.items()
        closes[sym] = p.execution.close[_start_index(p.execution, start) :]
        return timestamps, closes
    for sym, p in plans.items():
        e = p.execution
        idx = np.searchsorted(e.close_time, timestamps, side="right") - 1
        values = e.close[np.clip(idx, 0, None)]
        values = np.where(idx >= 0, values, np.nan)
        closes[sym] = values
    return timestamps, closes


def run_id_for(config: BacktestConfig, now_ms: int) -> str:
    """``<utc time>-<strategy>-<hash of config>``: sortable, and two configs never collide."""
    digest = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:8]
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now_ms / 1000))
    names = "+".join(dict.fromkeys(s.name for s in config.strategies))
    return f"{stamp}-{names}-{digest}"


__all__ = ["Backtest", "BacktestResult", "Decimal", "run_id_for"]
