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

    The monomials of degree L follow from those of degree L - 1 (in ``cartesian_exponents`` order) as
    three contiguous runs: all of them times x (lx >= 1), the last L of them (lx = 0) times y (lx = 0,
    ly >= 1), the last one times z; each monomial then takes sqrt(L / l_axis), the ratio of the weights.
    """

    ratio: torch.Tensor
    derivatives: torch.Tensor

    def __init__(self, l_max: int) -> None:
        super().__init__()
        exponents = cartesian_exponents(l_max)
        self.l_max = l_max
        self.degree = [sum(e) for e in exponents]
        self.bounds = [self.degree.index(ell) for ell in range(l_max + 1)] + [len(exponents)]
        ratio = []
        for lx, ly, lz in exponents:  # the axis of a monomial: the first with a non-zero power
            total = lx + ly + lz
            power = lx if lx else (ly if ly else lz)
            ratio.append(math.sqrt(total / power) if total else 1.0)
        self.register_buffer("ratio", torch.tensor(ratio, dtype=torch.float64), persistent=False)
        # dY_a/dr_c = w_a l_c / w_b Y_b with b = a - e_c (w: the weights); per L >= 2 a matrix
        # D_L [a in L, (b in L - 1, c)], zero-padded to the largest L into one buffer
        weight = [
            math.sqrt(math.factorial(sum(e)) / math.prod(math.factorial(p) for p in e)) for e in exponents
        ]
        sizes = [(ell + 1) * (ell + 2) // 2 for ell in range(l_max + 1)]
        derivatives = torch.zeros(
            max(l_max - 1, 0), sizes[-1], 3 * sizes[-2] if l_max else 0, dtype=torch.float64
        )
        for a, powers in enumerate(exponents):
            ell = sum(powers)
            for axis in range(3):
                if ell >= 2 and powers[axis]:
                    lx, ly, lz = (p - (c == axis) for c, p in enumerate(powers))
                    b = exponents.index((lx, ly, lz))
                    column = 3 * (b - self.bounds[ell - 1]) + axis
                    derivatives[ell - 2, a - self.bounds[ell], column] = weight[a] * powers[axis] / weight[b]
        self.register_buffer("derivatives", derivatives, persistent=False)

    @property
    def size(self) -> int:
        return len(self.degree)

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        """Args: vectors [n_edges, 3] in Å. Returns [n_edges, n_monomials] (Å^L)."""
        blocks = [torch.ones_like(vectors[:, :1])]
        if self.l_max > 0:
            blocks.append(vectors)  # x, y, z: weights 1
        x, y, z = vectors[:, 0:1], vectors[:, 1:2], vectors[:, 2:3]
        for ell in range(2, self.l_max + 1):
            lower = blocks[-1]
            runs = torch.cat([lower * x, lower[:, -ell:] * y, lower[:, -1:] * z], dim=1)
            blocks.append(runs * self.ratio[self.bounds[ell] : self.bounds[ell + 1]].to(vectors.dtype))
        return torch.cat(blocks, dim=1)

    def vjp(self, vectors: torch.Tensor, values: torch.Tensor, d_values: torch.Tensor) -> torch.Tensor:
        """dL/dr [n_edges, 3] from dL/dY_a [n_edges, n_monomials] and Y_a = ``forward(vectors)`` (``values``):
        dL/dr_c = sum_a dL/dY_a dY_a/dr_c, dY_a/dr_c = sum_(b in L-1) D_L[a, (b, c)] Y_b (``derivatives``)."""
        if self.l_max == 0:
            return torch.zeros_like(vectors)
        b = self.bounds
        d_vectors = d_values[:, b[1] : b[2]].clone()  # L = 1: Y = r
        for ell in range(2, self.l_max + 1):
            lower = values[:, b[ell - 1] : b[ell]]  # dY_L/dr is linear in Y_(L-1)
            n_lower = lower.shape[1]
            block = self.derivatives[ell - 2, : b[ell + 1] - b[ell], : 3 * n_lower].to(values.dtype)
            products = d_values[:, b[ell] : b[ell + 1]] @ block  # sum_a dL/dY_a D_L[a, (b, c)]
            for parent in range(n_lower):  # (a sum over the short last axis would be slow)
                d_vectors.addcmul_(products[:, 3 * parent : 3 * parent + 3], lower[:, parent : parent + 1])
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
