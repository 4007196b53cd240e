"""The service's request and response bodies (pydantic): what the OpenAPI page documents.

Requests are strict: unknown fields, ids longer than the database's columns, prices that are not
positive finite numbers and more weeks than a forecast spans are refused with 422 before any work.
"""
from __future__ import annotations

import datetime as dt
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# the source tables' column widths (pipeline.data.db): a longer id cannot name a row
StoreId = Field(min_length=1, max_length=10, pattern=r"^[A-Za-z0-9_\-]+$", examples=["CA_1"])
ItemId = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\-]+$", examples=["FOODS_3_012"])
MAX_PRICE = 1e6  # a unit price above this is a typo, not a what-if
# which model's forecast GET /forecasts answers with: the batch model (LightGBM, the one that serves and is
# published) or the online model (the River challenger, ForecastOnline, from [online_model] start_date)
ModelName = Literal["batch", "online"]


class PriceOverride(BaseModel):
    """The series' price in one Walmart week of the forecast (the week's other days follow it)."""

    model_config = ConfigDict(extra="forbid")
    wm_yr_wk: int = Field(ge=10000, le=99999, description="Walmart week, as in the calendar (e.g. 11617)")
    sell_price: float = Field(gt=0, le=MAX_PRICE, description="unit price in that week")

    @field_validator("sell_price")
    @classmethod
    def finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("sell_price must be a finite number")
        return v


class PredictRequest(BaseModel):
    """One series' forecast from online features as of the end of ``as_of``, optionally with other prices."""

    model_config = ConfigDict(extra="forbid")
    store_id: str = StoreId
    item_id: str = ItemId
    as_of: dt.date = Field(description="run date: the data as known at its end (YYYY-MM-DD)")
    prices: list[PriceOverride] = Field(default_factory=list, max_length=5,
                                        description="what-if prices of forecast weeks (at most the 5 a forecast spans)")

    @field_validator("prices")
    @classmethod
    def one_price_a_week(cls, v: list[PriceOverride]) -> list[PriceOverride]:
        weeks = [p.wm_yr_wk for p in v]
        if len(set(weeks)) != len(weeks):
            raise ValueError("one price per Walmart week: a week is given twice")
        return v


class BatchRequest(BaseModel):
    """Several series at once (at most ``[serve] max_batch``)."""

    model_config = ConfigDict(extra="forbid")
    series: list[PredictRequest] = Field(min_length=1, max_length=10_000)


class ForecastRow(BaseModel):
    date: dt.date
    horizon: int
    units: float


class PublishedRow(ForecastRow):
    quantiles: dict[str, float] | None = Field(
        None, description="the run's M5 quantiles of the day (0.005 ... 0.995), where the run made them")


class PredictedRow(ForecastRow):
    wm_yr_wk: int
    sell_price: float | None = Field(description="the price the forecast assumed (an override where one was given)")


class ModelRef(BaseModel):
    model_date: str
    how: str = Field(description="pinned, promoted or kept")
    reason: str


class ForecastResponse(BaseModel):
    store_id: str
    item_id: str
    as_of: dt.date
    model: ModelName = Field(description="batch: the published forecast; online: the online model's (no quantiles)")
    forecast: list[PublishedRow]


class PredictResponse(BaseModel):
    store_id: str
    item_id: str
    as_of: dt.date
    model: ModelRef
    prices: list[PriceOverride]
    forecast: list[PredictedRow]


class BatchResponse(BaseModel):
    results: list[PredictResponse]


class Health(BaseModel):
    status: str
    database: bool
    model_loaded: bool
    model_date: str | None
    newest_run: dt.date | None
    detail: str | None = None
