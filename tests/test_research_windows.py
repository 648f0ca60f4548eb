"""Walk-forward windows: no test session is ever inside (or before) its own train window, the
test windows tile the sessions after the first train window, and a train backtest never
sees a test bar."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feeds.loader import load_market_data
from mtbt.config import load_run
from mtbt.errors import MtbtError
from mtbt.research.windows import cut, make_windows, parse_span, session_dates

DAYS = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(400)]


@given(n=st.integers(1, 300), train=st.integers(1, 80), test=st.integers(1, 40))
def test_test_windows_follow_their_train_windows_and_tile_the_rest(n, train, test):
    sessions = DAYS[:n]
    if n <= train:
        with pytest.raises(MtbtError, match="a walk-forward needs more than"):
            make_windows(sessions, train, test)
        return
    windows = make_windows(sessions, train, test)
    tested = []
    for w in windows:
        lo = sessions.index(w.train_first)
        assert sessions[lo:lo + train] == sessions[lo:sessions.index(w.train_last) + 1]
        assert w.train_sessions == train
        assert w.train_last < w.test_first            # no test session inside its train window
        assert sessions.index(w.test_first) == sessions.index(w.train_last) + 1
        span = sessions[sessions.index(w.test_first):sessions.index(w.test_last) + 1]
        assert len(span) == w.test_sessions <= test
        tested += span
    assert tested == sessions[train:]                 # every later session tested exactly once
    assert [w.number for w in windows] == list(range(1, len(windows) + 1))


def test_spans_are_counted_in_sessions():
    assert parse_span("60d", "--train") == 60
    assert parse_span("20", "--test") == 20
    with pytest.raises(MtbtError, match="--train 2w: expected a number of trading sessions"):
        parse_span("2w", "--train")


@pytest.fixture(scope="module")
def sample_market():
    return load_market_data(load_run(None, ["data.sample_sessions=30"]).data)


def test_a_train_backtest_never_sees_a_test_bar(sample_market):
    sessions = session_dates(sample_market)
    assert sessions[0] == sample_market.trade_from and len(sessions) == 30
    for w in make_windows(sessions, 10, 7):
        train = cut(sample_market, w.train_first, w.train_last, warmup=20)
        test = cut(sample_market, w.test_first, w.test_last, warmup=20)
        train_days = set(train.bars.index.date)
        assert max(train_days) == w.train_last < w.test_first
        assert train.trade_from == w.train_first
        # the test run's earlier bars only warm indicators up; trading starts at test_first
        assert test.trade_from == w.test_first and max(test.bars.index.date) == w.test_last
        assert len(set(test.bars.index.date)) == 20 + w.test_sessions
