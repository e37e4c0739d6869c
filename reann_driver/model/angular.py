"""Angular parts of the Gaussian-type orbitals: Cartesian monomials or e3nn real spherical harmonics."""

import math

import torch
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

    parent: torch.Tensor
    axis: torch.Tensor
    ratio: torch.Tensor

    def __init__(self, l_max: int) -> None:
        super().__init__()
        exponents = cartesian_exponents(l_max)
        self.l_max = l_max
        self.degree = [sum(e) for e in exponents]
        self.bounds = [self.degree.index(ell) for ell in range(l_max + 1)] + [len(exponents)]
        # Y_a = Y_parent(a) * r[axis(a)] * ratio(a): the monomial of degree L - 1 with one power less along
        # the first axis a has, and sqrt(L / l_axis), the ratio of the two weights
        parent, axis, ratio = [], [], []
        for lx, ly, lz in exponents:
            total = lx + ly + lz
            along = 0 if lx else (1 if ly else 2)
            lower = (lx - (along == 0), ly - (along == 1), lz - (along == 2))
            parent.append(exponents.index(lower) - self.bounds[total - 1] if total else 0)
            axis.append(along)
            ratio.append(math.sqrt(total / (lx, ly, lz)[along]) if total else 1.0)
        self.register_buffer("parent", torch.tensor(parent, dtype=torch.long), persistent=False)
        self.register_buffer("axis", torch.tensor(axis, dtype=torch.long), persistent=False)
        self.register_buffer("ratio", torch.tensor(ratio, dtype=torch.float64), persistent=False)

    @property
    def size(self) -> int:
        return len(self.degree)

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        """Args: vectors [n_edges, 3] in Å. Returns [n_edges, n_monomials] (Å^L)."""
        blocks = [torch.ones_like(vectors[:, :1])]
        if self.l_max > 0:
            blocks.append(vectors)  # x, y, z: weights 1
        for ell in range(2, self.l_max + 1):
            lo, hi = self.bounds[ell], self.bounds[ell + 1]
            ratio = self.ratio[lo:hi].to(vectors.dtype)
            parents = blocks[-1].index_select(1, self.parent[lo:hi])
            blocks.append(parents * vectors.index_select(1, self.axis[lo:hi]) * ratio)
        return torch.cat(blocks, dim=1)

    def vjp(self, vectors: torch.Tensor, values: torch.Tensor, d_values: torch.Tensor) -> torch.Tensor:
        """dL/dr [n_edges, 3] from dL/dY_a [n_edges, n_monomials] and Y_a = ``forward(vectors)`` (``values``):
        the recurrence of ``forward`` backwards, Y_a = Y_parent(a) r_axis(a) ratio(a) from L_max down to 1."""
        if self.l_max == 0:
            return torch.zeros_like(vectors)
        b = self.bounds
        d_vectors = d_values[:, b[1] : b[2]].clone()  # L = 1: Y = r
        d_block = d_values[:, b[self.l_max] : b[self.l_max + 1]]
        for ell in range(self.l_max, 1, -1):
            lo, hi = b[ell], b[ell + 1]
            parent, axis = self.parent[lo:hi], self.axis[lo:hi]
            scaled = d_block * self.ratio[lo:hi].to(vectors.dtype)
            d_vectors.index_add_(1, axis, scaled * values[:, b[ell - 1] : b[ell]].index_select(1, parent))
            d_parents = scaled * vectors.index_select(1, axis)
            if ell == 2:
                d_vectors.index_add_(1, parent, d_parents)
            else:
                d_block = d_values[:, b[ell - 1] : b[ell]].index_add(1, parent, d_parents)
        return d_vectors


class SphericalAngular(nn.Module):
    """Real spherical harmonics Y_lm(r/|r|) from e3nn, 'component' normalisation, L = 0..l_max."""

    def __init__(self, l_max: int) -> None:
        from e3nn import o3  # imported only for this optional basis (it takes a while to load)

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

    def vjp(self, vectors: torch.Tensor, values: torch.Tensor, d_values: torch.Tensor) -> torch.Tensor:
        """dL/dr [n_edges, 3] from dL/dY [n_edges, (l_max + 1)^2] (through autograd; ``values`` unused)."""
        leaf = vectors.detach().requires_grad_(True)
        cotangent: list[torch.Tensor | None] = [d_values]
        (gradient,) = torch.autograd.grad([self.harmonics(leaf)], [leaf], cotangent)
        assert gradient is not None
        return gradient


def make_angular(kind: str, l_max: int) -> CartesianAngular | SphericalAngular:
    """Angular basis by name: ``"cartesian"`` (reference REANN) or ``"spherical"`` (e3nn)."""
    if kind == "cartesian":
        return CartesianAngular(l_max)
    if kind == "spherical":
        return SphericalAngular(l_max)
    raise ValueError(f"angular must be 'cartesian' or 'spherical', got {kind!r}")
