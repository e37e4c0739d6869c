"""Angular parts of the Gaussian-type orbitals: Cartesian monomials or e3nn real spherical harmonics."""

import math

import torch
from e3nn import o3
from torch import nn


def cartesian_exponents(l_max: int) -> list[tuple[int, int, int]]:
    """All (lx, ly, lz) with lx + ly + lz = L for L = 0..l_max, ordered by L."""
    return [
        (lx, ly, total - lx - ly)
        for total in range(l_max + 1)
        for lx in range(total, -1, -1)
        for ly in range(total - lx, -1, -1)
    ]


class CartesianAngular(nn.Module):
    """Y_a(r) = sqrt(L!/(lx! ly! lz!)) x^lx y^ly z^lz for every monomial a of degree L <= l_max.

    The square root of the multinomial weight is folded in, so that a sum of squares over the monomials
    of one L equals the weighted sum of the reference formulation,
    sum_{lx+ly+lz=L} L!/(lx!ly!lz!) (...)^2; for two vectors it gives (r_1 . r_2)^L.
    """

    exponents: torch.Tensor
    weights: torch.Tensor

    def __init__(self, l_max: int) -> None:
        super().__init__()
        exponents = cartesian_exponents(l_max)
        self.l_max = l_max
        self.register_buffer("exponents", torch.tensor(exponents, dtype=torch.long), persistent=False)
        weights = [
            math.sqrt(
                math.factorial(sum(e)) / (math.factorial(e[0]) * math.factorial(e[1]) * math.factorial(e[2]))
            )
            for e in exponents
        ]
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float64), persistent=False)
        self.degree = [sum(e) for e in exponents]

    @property
    def size(self) -> int:
        return len(self.degree)

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        """Args: vectors [n_edges, 3] in Å. Returns [n_edges, n_monomials] (Å^L)."""
        powers = [torch.ones_like(vectors)]
        for _ in range(self.l_max):
            powers.append(powers[-1] * vectors)
        table = torch.stack(powers, dim=-1)  # [n_edges, 3, l_max + 1]
        x = table[:, 0, self.exponents[:, 0]]
        y = table[:, 1, self.exponents[:, 1]]
        z = table[:, 2, self.exponents[:, 2]]
        return x * y * z * self.weights.to(vectors.dtype)


class SphericalAngular(nn.Module):
    """Real spherical harmonics Y_lm(r/|r|) from e3nn, 'component' normalisation, L = 0..l_max."""

    def __init__(self, l_max: int) -> None:
        super().__init__()
        self.l_max = l_max
        self.harmonics = o3.SphericalHarmonics(
            o3.Irreps.spherical_harmonics(l_max), normalize=True, normalization="component"
        )
        self.degree = [ell for ell in range(l_max + 1) for _ in range(2 * ell + 1)]

    @property
    def size(self) -> int:
        return len(self.degree)

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        """Args: vectors [n_edges, 3] in Å. Returns [n_edges, (l_max + 1)^2] (dimensionless)."""
        return self.harmonics(vectors)


def make_angular(kind: str, l_max: int) -> CartesianAngular | SphericalAngular:
    """Angular basis by name: ``"cartesian"`` (reference REANN) or ``"spherical"`` (e3nn)."""
    if kind == "cartesian":
        return CartesianAngular(l_max)
    if kind == "spherical":
        return SphericalAngular(l_max)
    raise ValueError(f"angular must be 'cartesian' or 'spherical', got {kind!r}")
