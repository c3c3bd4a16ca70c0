"""Which layers carry the success direction: cross-validated measures with bootstrap CIs.

Pure tensor / scikit-learn math on cached activations (no TransformerLens). Every measure is
out-of-fold: examples are split by `cv_folds` (stratified k-fold) and each example is scored only
by a direction or probe fit on the other folds. The projection score of an example is

    s = (x - (mu_pos + mu_neg) / 2) . v / ||v||,    v = mu_pos - mu_neg,

with `mu_pos`, `mu_neg` the centroids of the correct and incorrect training-fold states, so scores
from different folds share a unit and a zero (the midpoint) and can be pooled. Confidence intervals
are percentile 95% intervals from resampling the pooled out-of-fold (score, label) pairs with
replacement (`numpy.random.default_rng(seed)`; resamples with a single class are skipped).

The logistic probe (StandardScaler + LogisticRegression, class_weight="balanced") sees the full
state vector; when d_model exceeds the training-fold size it first projects onto the top
min(n_train - 1, 256) PCA components fit on that training fold only.

Without signal, out-of-fold mean-difference AUROCs sit slightly below 0.5 on average (the
absence of a held-out example moves its class's training centroid away from it); read the
`auroc_shuffled` control as the null reference.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from jaxtyping import Bool, Float
from scipy.stats import rankdata
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor

from workbench.checks import check_finite
from workbench.errors import WorkbenchError

__all__ = ["EARLY_KS", "ProbeConfig", "cv_folds", "oof_projection_scores", "probe_layers"]

log = logging.getLogger(__name__)

Folds = list[tuple[np.ndarray, np.ndarray]]
MAX_PCA = 256
EARLY_KS: tuple[int, ...] = (1, 4, 16, 64)
"""Numbers of first generated tokens that early prediction looks at by default (the fit
split's states carry their means, so that `als probe` needs no pass of its own)."""
"""Most PCA components the logistic probe keeps when d_model exceeds the training-fold size."""


@dataclass(frozen=True, kw_only=True)
class ProbeConfig:
    """Cross-validation, bootstrap and probe settings of `probe_layers`."""

    n_folds: int = 5
    """Stratified CV folds; lowered to the smaller class's size when that is smaller."""
    n_bootstrap: int = 1000
    """Bootstrap resamples of the pooled out-of-fold pairs for the 95% CIs."""
    seed: int = 0
    """Seeds the folds, the control's label permutation, the bootstrap and the PCA."""
    logistic_c: float = 1.0
    """Inverse L2 strength of the logistic-regression probe."""
    shuffled_control: bool = True
    """Also report `auroc_shuffled`: the projection AUROC with labels permuted once (about 0.5)."""

    def __post_init__(self) -> None:
        if self.n_folds < 2:
            raise WorkbenchError(f"n_folds must be at least 2, got {self.n_folds}")
        if self.n_bootstrap < 1:
            raise WorkbenchError(f"n_bootstrap must be at least 1, got {self.n_bootstrap}")
        check_finite(self)
        if not self.logistic_c > 0:
            raise WorkbenchError(f"logistic_c must be positive, got {self.logistic_c}")


def _labels(labels: Bool[Tensor, " n"] | np.ndarray) -> np.ndarray:
    y = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if y.ndim != 1:
        raise WorkbenchError(f"labels must be one-dimensional, got shape {tuple(y.shape)}")
    return y.astype(bool)


def cv_folds(labels: Bool[Tensor, " n"] | np.ndarray, n_folds: int, seed: int) -> Folds:
    """(train_idx, test_idx) pairs of a shuffled stratified k-fold; the test sets partition
    range(n). `n_folds` is lowered to the smaller class's size when that is smaller."""
    y = _labels(labels)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if min(n_pos, n_neg) < 2:
        raise WorkbenchError(
            f"cross-validation needs at least 2 correct and 2 incorrect examples; have {n_pos} "
            f"correct and {n_neg} incorrect: add generations or use a larger split"
        )
    k = min(n_folds, n_pos, n_neg)
    if k < n_folds:
        log.info("lowering CV folds from %d to %d (smaller class has %d)", n_folds, k, k)
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(skf.split(np.zeros(len(y)), y))


def _oof_scores(
    states: Float[Tensor, "n layer d_model"], y: np.ndarray, folds: Folds
) -> np.ndarray:
    """Out-of-fold midpoint-centred unit-direction projections of every layer, (n, layer)."""
    states = states.detach().cpu().float()
    yt = torch.as_tensor(y)
    out = torch.full(tuple(states.shape[:2]), float("nan"), dtype=torch.float64)
    for train, test in folds:
        tr = torch.as_tensor(train)
        w_pos, w_neg = torch.zeros(len(y)), torch.zeros(len(y))
        pos, neg = tr[yt[tr]], tr[~yt[tr]]
        w_pos[pos], w_neg[neg] = 1.0 / len(pos), 1.0 / len(neg)
        mu_pos = torch.einsum("n,nld->ld", w_pos, states)  # weighted sums: no copy of the states
        mu_neg = torch.einsum("n,nld->ld", w_neg, states)
        v = mu_pos - mu_neg
        u = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        offset = ((mu_pos + mu_neg) / 2 * u).sum(-1)
        te = torch.as_tensor(test)
        out[te] = (torch.einsum("nld,ld->nl", states[te], u) - offset).double()
    return out.numpy()


def oof_projection_scores(
    states_layer: Float[Tensor, "n d_model"], labels: Bool[Tensor, " n"], folds: Folds
) -> np.ndarray:
    """Score of each example on the mean-difference direction of the folds it is not in (see the
    module docstring for the formula)."""
    y = _labels(labels)
    if states_layer.ndim != 2 or states_layer.shape[0] != len(y):
        raise WorkbenchError(
            f"states of shape {tuple(states_layer.shape)} do not match {len(y)} labels; "
            "pass one layer's (n, d_model) states"
        )
    return _oof_scores(states_layer[:, None], y, folds)[:, 0]


def _probe_predictions(x: np.ndarray, y: np.ndarray, folds: Folds, cfg: ProbeConfig) -> np.ndarray:
    pred = np.zeros(len(y), dtype=bool)
    for train, test in folds:
        steps: list[Any] = []
        if x.shape[1] > len(train):
            steps.append(PCA(n_components=min(len(train) - 1, MAX_PCA), random_state=cfg.seed))
        lr = LogisticRegression(C=cfg.logistic_c, max_iter=1000, class_weight="balanced")
        model = make_pipeline(*steps, StandardScaler(), lr)
        model.fit(x[train], y[train])
        pred[test] = model.predict(x[test])
    return pred


# Vectorised metrics over bootstrap resamples: a, y of shape (B, n); every row has both classes.
def _auroc_b(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    n1 = y.sum(1)
    n0 = y.shape[1] - n1
    return ((rankdata(s, axis=1) * y).sum(1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def _cohens_d_b(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    n1, n0 = y.sum(1), (~y).sum(1)
    m1, m0 = (s * y).sum(1) / n1, (s * ~y).sum(1) / n0
    ss = ((s - m1[:, None]) ** 2 * y).sum(1) + ((s - m0[:, None]) ** 2 * ~y).sum(1)
    sd = np.sqrt(ss / np.maximum(y.shape[1] - 2, 1))
    return (m1 - m0) / np.maximum(sd, 1e-12)


def _accuracy_b(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (p == y).mean(1)


def _bacc_b(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 0.5 * ((p & y).sum(1) / y.sum(1) + (~p & ~y).sum(1) / (~y).sum(1))


Metric = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _ci(fn: Metric, a: np.ndarray, y: np.ndarray, idx: np.ndarray) -> tuple[float, float]:
    ya = y[idx]
    keep = ya.any(1) & ~ya.all(1)
    if not keep.any():
        return float("nan"), float("nan")
    lo, hi = np.percentile(fn(a[idx[keep]], ya[keep]), [2.5, 97.5])
    return float(lo), float(hi)


def _row(key: dict, value: Any, fn: Metric, a: np.ndarray, y: np.ndarray, idx: np.ndarray) -> dict:
    lo, hi = _ci(fn, a, y, idx)
    return {**key, "value": float(value), "ci_low": lo, "ci_high": hi, "n": len(y)}


def _boot_idx(n: int, cfg: ProbeConfig) -> np.ndarray:
    return np.random.default_rng(cfg.seed).integers(0, n, size=(cfg.n_bootstrap, n))


def probe_layers(
    states: Float[Tensor, "n layer d_model"],
    labels: Bool[Tensor, " n"],
    layers: Sequence[int],
    cfg: ProbeConfig = ProbeConfig(),
    *,
    position: str = "",
) -> list[dict[str, Any]]:
    """Tidy table, one row per (layer, metric): keys layer, position, metric, value, ci_low,
    ci_high, n. Metrics: auroc and cohens_d of the out-of-fold projection scores,
    probe_accuracy and probe_balanced_accuracy of the out-of-fold logistic probe, and (with
    `cfg.shuffled_control`) auroc_shuffled, the projection AUROC with the labels permuted once
    before everything (folds included). Column j of `states` is model layer `layers[j]`."""
    y = _labels(labels)
    if states.ndim != 3 or tuple(states.shape[:2]) != (len(y), len(layers)):
        raise WorkbenchError(
            f"states of shape {tuple(states.shape)} do not match {len(y)} labels and "
            f"{len(layers)} layers; expected (n, layer, d_model) with one column per layer"
        )
    states = states.detach().cpu().float()
    folds = cv_folds(y, cfg.n_folds, cfg.seed)
    scores = _oof_scores(states, y, folds)
    idx = _boot_idx(len(y), cfg)
    if cfg.shuffled_control:
        y_shuf = np.random.default_rng(cfg.seed + 1).permutation(y)
        shuffled = _oof_scores(states, y_shuf, cv_folds(y_shuf, cfg.n_folds, cfg.seed))
    rows: list[dict[str, Any]] = []
    for j, layer in enumerate(layers):
        s = scores[:, j]
        pred = _probe_predictions(states[:, j].numpy(), y, folds, cfg)
        specs = [
            ("auroc", roc_auc_score(y, s), _auroc_b, s, y),
            ("cohens_d", _cohens_d_b(s[None], y[None])[0], _cohens_d_b, s, y),
            ("probe_accuracy", np.mean(pred == y), _accuracy_b, pred, y),
            ("probe_balanced_accuracy", balanced_accuracy_score(y, pred), _bacc_b, pred, y),
        ]
        if cfg.shuffled_control:
            t = shuffled[:, j]
            specs.append(("auroc_shuffled", roc_auc_score(y_shuf, t), _auroc_b, t, y_shuf))
        key = {"layer": layer, "position": position}
        rows += [_row({**key, "metric": m}, v, fn, a, yy, idx) for m, v, fn, a, yy in specs]
    return rows
