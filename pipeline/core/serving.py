"""The model's life cycle: which model serves a run date, in one pure function.

Models are trained on the dates ``anchor ± k × every_days`` (the training
schedule). A run date belongs to the newest training date on or before it. The
model trained then serves if its promotion decision says so; otherwise the
decision names the incumbent that keeps serving. A pin (``[training]
serve_model``) overrides both: the roll-back switch. The chain, the report, the
forecast manifest and the prediction service all ask :func:`serving_model`, so a
rerun of an old date serves what it served the first time, whatever has been
trained since.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Callable, Mapping


@dataclasses.dataclass(frozen=True)
class TrainingSchedule:
    """When models are trained and which earlier models a new one is compared with."""

    anchor: dt.date
    every_days: int
    promotion_start: dt.date
    lookback: int

    def __post_init__(self):
        if self.every_days < 1:
            raise ValueError(f"[training] every_days must be at least 1, not {self.every_days}")
        if self.lookback < 0:
            raise ValueError(f"[training] promotion_lookback must be at least 0, not {self.lookback}")

    def training_date(self, run_date: dt.date) -> dt.date:
        """The newest training date ≤ ``run_date`` on the grid ``anchor + k·every_days`` (k may be negative)."""
        return self.anchor + dt.timedelta(days=((run_date - self.anchor).days // self.every_days) * self.every_days)

    def is_training_date(self, date: dt.date) -> bool:
        return self.training_date(date) == date

    def compared_with(self, candidate: dt.date) -> list[dt.date]:
        """The previous training dates whose models the model of ``candidate`` is compared with.

        At most ``lookback`` of them, none before ``promotion_start``: a decision needs a
        bounded number of trainings whatever the date, and no older model ever serves.
        """
        dates = (candidate - dt.timedelta(days=k * self.every_days) for k in range(1, self.lookback + 1))
        return [d for d in dates if d >= self.promotion_start]


@dataclasses.dataclass(frozen=True)
class ServingChoice:
    """The model serving a run date, and why."""

    run_date: dt.date
    model_date: dt.date
    training_date: dt.date
    how: str  # "pinned", "promoted" or "kept" (the candidate was worse than the incumbent)
    reason: str

    def as_dict(self) -> dict:
        return {"run_date": self.run_date.isoformat(), "model_date": self.model_date.isoformat(),
                "training_date": self.training_date.isoformat(), "how": self.how, "reason": self.reason}


def serving_model(run_date: dt.date, schedule: TrainingSchedule,
                  decision_of: Callable[[dt.date], Mapping] | Mapping[dt.date, Mapping],
                  pin: dt.date | None = None) -> ServingChoice:
    """Which model serves ``run_date``: the pin if any, else what the decision of its training date says.

    ``decision_of`` gives the recorded promotion decision of a training date (a mapping or a
    function; it is not asked when a pin is set). A pin later than the run date is refused:
    a forecast cannot be made by a model trained on days after it.
    """
    training = schedule.training_date(run_date)
    if pin is not None:
        if pin > run_date:
            raise ValueError(f"[training] serve_model = {pin} is after the run date {run_date}: "
                             "a model trained later cannot have served it")
        return ServingChoice(run_date, pin, training, "pinned", f"[training] serve_model pins the model of {pin}")
    decision = decision_of(training) if callable(decision_of) else decision_of[training]
    if dt.date.fromisoformat(decision["candidate"]) != training:
        raise ValueError(f"the promotion decision given for {training} is the decision of {decision['candidate']}")
    served = dt.date.fromisoformat(decision["serving_model"])
    return ServingChoice(run_date, served, training, "promoted" if decision["promoted"] else "kept", decision["reason"])


def decide(candidate: dt.date, scores: dict[dt.date, float], margin: float) -> dict:
    """The promotion decision of ``candidate`` from the validation WRMSSE of it and of the previous models.

    ``scores`` holds the candidate's own score and one per previous model (none: the first model of the
    promotion window, promoted as is).
    """
    previous = {d: v for d, v in scores.items() if d != candidate}
    base = {"candidate": candidate.isoformat(), "margin": margin,
            "previous": {d.isoformat(): round(v, 6) for d, v in sorted(previous.items())}}
    if not previous:
        return {**base, "candidate_wrmsse": None, "incumbent": None, "incumbent_wrmsse": None, "promoted": True,
                "serving_model": candidate.isoformat(),
                "reason": "first model on or after [training] promotion_start: promoted as is"}
    # the best previous model; on a tie the newer one
    incumbent = min(previous, key=lambda d: (previous[d], -d.toordinal()))
    cand, inc = scores[candidate], previous[incumbent]
    promoted = bool(cand <= inc * (1.0 + margin))
    return {
        **base, "candidate_wrmsse": round(cand, 6), "incumbent": incumbent.isoformat(), "incumbent_wrmsse": round(inc, 6),
        "promoted": promoted, "serving_model": (candidate if promoted else incumbent).isoformat(),
        "reason": (f"validation WRMSSE {cand:.4f} vs {inc:.4f} of the best of the {len(previous)} previous model(s) "
                   f"({incumbent}) on the same window: " + ("not worse than" if promoted else "worse than")
                   + f" the allowed {1 + margin:.2f}×"),
    }
