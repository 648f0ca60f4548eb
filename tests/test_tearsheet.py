"""The tearsheet page: drawn with a helper process or alone, the same page; charts a run is
too short for say so."""
from __future__ import annotations

import multiprocessing as mp
import re

import numpy as np
import pandas as pd
import pytest

from analyzers.tearsheet import draw_charts, tearsheet_result, write_tearsheet


def _returns(sessions: int) -> tuple[pd.Series, pd.Series]:
    days = pd.bdate_range("2024-01-02", periods=sessions)
    rng = np.random.default_rng(7)
    returns = pd.Series(rng.normal(0.0005, 0.006, sessions), index=days)
    return returns, pd.Series(rng.normal(0.0004, 0.009, sessions), index=days)


def _write(path, returns, bench, helper=None) -> str:
    write_tearsheet(returns, bench, path, title="t", benchmark_title="SPY buy & hold",
                    helper=helper)
    return path.read_text(encoding="utf-8")


def _comparable(page: str) -> str:
    """The page less what differs between two drawings of one chart (SVG ids, dates)."""
    page = re.sub(r"<dc:date>[^<]*</dc:date>", "", page)
    page = re.sub(r"url\(#[^)]*\)", "", page)
    return re.sub(r'(id|href|clip-path|xlink:href)="[^"]*"', "", page)


def _helped(path, returns, bench) -> None:
    def child(helper) -> None:
        try:
            _write(path, returns, bench, helper)
            tearsheet_result(helper, "written")
        except Exception as exc:
            tearsheet_result(helper, repr(exc))

    context = mp.get_context("fork")
    ours, theirs = context.Pipe()
    process = context.Process(target=child, args=(theirs,), daemon=True)
    process.start()
    theirs.close()
    assert draw_charts(ours) == "written"
    process.join(30)


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs fork")
def test_a_page_drawn_with_a_helper_is_the_page_drawn_alone(tmp_path):
    """Half a year and more (quantstats' rolling charts drawn too): the helper draws ours
    and some of quantstats' charts, the page is the same, no placeholder left."""
    returns, bench = _returns(150)
    alone = _write(tmp_path / "alone.html", returns, bench)
    _helped(tmp_path / "helped.html", returns, bench)
    helped = (tmp_path / "helped.html").read_text(encoding="utf-8")
    assert "mtbt chart" not in helped
    assert helped.count("<svg") == alone.count("<svg") >= 14
    assert _comparable(helped) == _comparable(alone)


def _div_texts(page: str, div_id: str) -> list[str]:
    figure = re.search(rf'<div id="{div_id}">(.*?)</div>', page, re.S).group(1)
    return re.findall(r"<text[^>]*>([^<]*)</text>", figure)


def test_a_rolling_chart_the_run_is_too_short_for_says_so(tmp_path):
    """quantstats draws empty axes labelled 2000-2010 for a 6-month window on 60 sessions."""
    returns, bench = _returns(60)
    page = _write(tmp_path / "short.html", returns, bench)
    for div, title in (("rolling_vol", "Rolling Volatility (6-Months)"),
                       ("rolling_sharpe", "Rolling Sharpe (6-Months)"),
                       ("rolling_sortino", "Rolling Sortino (6-Months)")):
        assert _div_texts(page, div) == [
            title, "not drawn: its window is 126 sessions and the run has 60"]
    longer = _write(tmp_path / "long.html", *_returns(130))
    assert "Rolling Volatility (6-Months)" in " ".join(_div_texts(longer, "rolling_vol"))
    assert "not drawn" not in longer
