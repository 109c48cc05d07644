"""Family-clustered inference for weighted least squares: CR2 standard errors with
Bell-McCaffrey degrees of freedom (one contrast), and a wild cluster bootstrap with
the null imposed (several contrasts jointly).

Why: models of one family share more than their size, so their deviations from a
fitted line are correlated, and a test that treats them as independent is liberal
when families are few (docs/SCALING.md, section 8). The family is the independent
unit. CR2 (the bias-reduced cluster-robust variance) with Satterthwaite-type df
keeps single-contrast t tests near their nominal size with as few as 2 clusters; a
joint Wald test built on it needs the bootstrap below (its Hotelling approximation
rejected in under 2% of null panels with 4 families). Everything works on the
weighted scale (rows times sqrt(weight)), where the working model is i.i.d.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Webb's six-point weights: mean 0, variance 1, and 6^G distinct draws, so a
#: bootstrap p-value is not a coarse step function with 4 to 6 clusters (Rademacher
#: signs give 2^(G-1) distinct statistics: 8 with 4 families, p never below 1/8).
WEBB_WEIGHTS = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])

#: fewest clusters for the joint wild-bootstrap test: with 3 families it rejected in
#: 0.3% of simulated null panels (no power), with 4 in 3-4% (docs/SCALING.md).
MIN_CLUSTERS = 4


def _pinv_sqrt(a: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Symmetric inverse square root on the non-null eigenspace (Moore-Penrose).

    I - H_gg is singular when a fixed effect lives inside one cluster (a model's
    fixed effect inside its family); the pseudo-inverse is the CR2 adjustment for
    that case (Pustejovsky and Tipton 2018)."""
    ev, vec = np.linalg.eigh((a + a.T) / 2)
    keep = ev > tol * max(float(ev.max()), 1.0)
    return (vec[:, keep] / np.sqrt(ev[keep])) @ vec[:, keep].T


@dataclass
class ClusteredWLS:
    """A weighted least-squares fit prepared for CR2 inference by cluster."""

    X: np.ndarray  # weighted design (rows times sqrt(w))
    y: np.ndarray  # weighted outcome
    beta: np.ndarray
    bread: np.ndarray  # (X'X)^+
    resid_maker: np.ndarray  # I - H
    clusters: list[np.ndarray]  # row indices of each cluster
    adjust: list[np.ndarray]  # bread X_g' A_g per cluster (p x n_g)

    @property
    def n_clusters(self) -> int:
        return len(self.clusters)


def clustered_wls(y: np.ndarray, X: np.ndarray, w: np.ndarray, cluster: np.ndarray) -> ClusteredWLS:
    """Fit y on X with weights w and precompute the CR2 pieces by cluster label."""
    sw = np.sqrt(np.asarray(w, float))
    Xw, yw = X * sw[:, None], np.asarray(y, float) * sw
    bread = np.linalg.pinv(Xw.T @ Xw)
    beta = bread @ Xw.T @ yw
    resid_maker = np.eye(len(yw)) - Xw @ bread @ Xw.T
    labels = np.asarray(cluster)
    groups = [np.flatnonzero(labels == g) for g in dict.fromkeys(labels.tolist())]
    adjust = [bread @ Xw[idx].T @ _pinv_sqrt(resid_maker[np.ix_(idx, idx)]) for idx in groups]
    return ClusteredWLS(Xw, yw, beta, bread, resid_maker, groups, adjust)


def cr2_contrast(fit: ClusteredWLS, c: np.ndarray) -> tuple[float, float, float]:
    """Estimate, CR2 standard error and Bell-McCaffrey df of the contrast c'beta.

    df = (tr G)^2 / ||G||_F^2 with G the Gram matrix of the clusters' influence
    vectors under the working model: the Satterthwaite df of the CR2 variance."""
    resid = fit.resid_maker @ fit.y
    scores = np.array([c @ a @ resid[idx] for a, idx in zip(fit.adjust, fit.clusters, strict=True)])
    infl = np.vstack(
        [(c @ a) @ fit.resid_maker[idx, :] for a, idx in zip(fit.adjust, fit.clusters, strict=True)]
    )
    gram = infl @ infl.T
    denom = float((gram * gram).sum())
    df = float(np.trace(gram)) ** 2 / denom if denom > 0 else np.nan
    return float(c @ fit.beta), float(np.sqrt(scores @ scores)), df


def _cr2_wald(fit: ClusteredWLS, rows: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """CR2 Wald statistic of beta[rows] = 0 for each (weighted) outcome column of Y."""
    B = fit.bread @ fit.X.T @ Y
    E = fit.resid_maker @ Y
    q = len(rows)
    V = np.zeros((Y.shape[1], q, q))
    for a, idx in zip(fit.adjust, fit.clusters, strict=True):
        S = a[rows] @ E[idx]  # q x columns
        V += np.einsum("sb,tb->bst", S, S)
    b = B[rows]
    return np.einsum("sb,bst,tb->b", b, np.linalg.pinv(V, hermitian=True), b)


def wild_cluster_wald(
    fit: ClusteredWLS, rows: np.ndarray, B: int = 999, seed: int = 0
) -> tuple[float, float]:
    """CR2 Wald statistic of beta[rows] = 0 and its wild cluster bootstrap p-value.

    The null is imposed (restricted fit without the tested columns), each
    cluster's restricted residuals are multiplied by one Webb weight, and the
    statistic is recomputed: p = (1 + #{W* >= W}) / (B + 1), never 0. The weights
    of the WLS are held at their estimate."""
    rows = np.asarray(rows)
    keep = np.setdiff1d(np.arange(fit.X.shape[1]), rows)
    X0 = fit.X[:, keep]
    fitted0 = X0 @ (np.linalg.pinv(X0) @ fit.y)
    resid0 = fit.y - fitted0
    label = np.empty(len(fit.y), dtype=int)
    for g, idx in enumerate(fit.clusters):
        label[idx] = g
    rng = np.random.default_rng(seed)
    v = rng.choice(WEBB_WEIGHTS, size=(fit.n_clusters, B))
    Ystar = fitted0[:, None] + resid0[:, None] * v[label]
    w0 = float(_cr2_wald(fit, rows, fit.y[:, None])[0])
    wstar = _cr2_wald(fit, rows, Ystar)
    hits = int((wstar >= w0 * (1 - 1e-9)).sum())
    return w0, (1 + hits) / (B + 1)
