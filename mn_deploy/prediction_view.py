"""How `deployment plan --predict` shows a prediction: one field a figure, each with its interval, and every
assumption the prediction had to make said in words, so a number is never read without what it rests on."""

from __future__ import annotations

from sim.prediction import Prediction
from sim.quantiles import Quantile
from sim.stats import CONFIDENCE, RESAMPLES, Share

OUTCOME_COLUMNS = ("outcome", "runs", "share", "interval")
INTERVALS = (
    f"{CONFIDENCE:.0%}; duration quantiles: order statistics (distribution-free, a bound the runs cannot support is"
    f" shown as -); shares: Wilson score; min serving: percentile bootstrap of the mean ({RESAMPLES:,} resamples)"
)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value / 1000:.1f}"


def _quantile(quantile: Quantile) -> str:
    if quantile.value is None:
        return "- (no run ended the deployment)"
    interval = f"[{_seconds(quantile.low)}, {_seconds(quantile.high)}]"
    return f"{_seconds(quantile.value)} s {interval} of {quantile.n} run(s)"


def _range(durations: list[float]) -> str:
    return f"{_seconds(min(durations))} to {_seconds(max(durations))} s" if durations else "-"


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def prediction_fields(prediction: Prediction) -> list[tuple[str, str]]:
    """The prediction as labelled lines: what ran, what it assumed, and its figures."""
    setup = prediction.setup
    serving = prediction.min_serving
    if serving.mean is None:
        min_serving = "- (no run had a successful deployment)"
    else:
        bounds = "" if serving.low is None else f" [{serving.low:.2f}, {serving.high:.2f}]"
        min_serving = f"mean {serving.mean:.2f}{bounds}, lowest {prediction.lowest_serving}"
    fields = [
        ("Prediction", f"{prediction.runs} simulated run(s) of version {setup.version}, seed {prediction.seed}"),
        ("Starting from", f"version {setup.current}, deployed at 0; the deploy at {_seconds(setup.deploy_at_ms)} s"),
        ("Calibrated from", f"{setup.instances_seen} recorded instance(s) of the versions it simulates"),
        *(("Assumed", note) for note in setup.notes),
        ("Duration median", _quantile(prediction.duration_median)),
        ("Duration p90", _quantile(prediction.duration_p90)),
        ("Duration range", _range(prediction.durations_ms)),
        ("Min serving", min_serving),
        ("Intervals", INTERVALS),
    ]
    if prediction.errors:
        fields.append(("Failed runs", f"{prediction.errors}; the first: {prediction.first_error}"))
    return fields


def outcome_rows(outcomes: dict[str, Share]) -> list[list[str]]:
    """One row an outcome: how many runs, its share and interval."""
    return [
        [name, f"{share.count} of {share.n}", _percent(share.share), f"[{_percent(share.low)}, {_percent(share.high)}]"]
        for name, share in outcomes.items()
    ]
