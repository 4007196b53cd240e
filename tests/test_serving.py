"""The model of a run date is a rule of the run date alone."""
from __future__ import annotations

import datetime as dt

import pytest

from pipeline.core.schedule import is_training_date, model_date

ANCHOR = dt.date(2016, 5, 22)


@pytest.mark.parametrize("every", [1, 7, 14])
def test_newest_training_date_on_or_before(every):
    for offset in range(-60, 60):
        date = ANCHOR + dt.timedelta(days=offset)
        chosen = model_date(date, ANCHOR, every)
        assert chosen <= date and (date - chosen).days < every
        assert (chosen - ANCHOR).days % every == 0
        assert is_training_date(chosen, ANCHOR, every)


def test_examples_and_bad_setting():
    assert model_date(dt.date(2016, 5, 21), ANCHOR, 7) == dt.date(2016, 5, 15)
    assert model_date(dt.date(2016, 6, 1), ANCHOR, 7) == dt.date(2016, 5, 29)
    with pytest.raises(ValueError, match="every_days"):
        model_date(ANCHOR, ANCHOR, 0)
