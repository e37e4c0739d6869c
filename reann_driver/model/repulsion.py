"""Short-range nuclear repulsion added to the learnt energy: the ZBL universal screened Coulomb potential.

Random or strongly compressed structures contain pairs closer than any training example (random CH4 down
to C-H 0.50 Å, where forces exceed 150 eV/Å). A network of smooth Gaussian features extrapolates such a
wall flatly; the ZBL term supplies its physical shape, and the network learns the difference.
"""

from collections.abc import Sequence

import torch
from ase.data import atomic_numbers, covalent_radii
from torch import nn

PAIR_REPULSIONS = ("none", "zbl", "zbl_heavy")


def polynomial_envelope(x: torch.Tensor, p: int = 6) -> torch.Tensor:
    """1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2) for x < 1, else 0: equal to 1 at 0 and
    vanishing with its first two derivatives at x = 1 (Klicpera et al., DimeNet, Eq. (8))."""
    power = x**p
    value = 1.0 + power * (-(p + 1) * (p + 2) / 2 + x * (p * (p + 2) - x * (p * (p + 1) / 2)))  # Horner
    return torch.where(x < 1.0, value, torch.zeros_like(value))


class ZBLRepulsion(nn.Module):
    """E_ij = Z_i Z_j e^2 / (4 pi eps_0 r) phi(r / a_ij) f(r / r_ij^max) with the ZBL screening function
    phi(x) = sum_k c_k exp(-d_k x) (Ziegler, Biersack & Littmark, The Stopping and Range of Ions in Solids,
    1985), a_ij = 0.4685 Å / (Z_i^0.23 + Z_j^0.23) and the polynomial envelope f switching it off at the sum
    of the covalent radii r_ij^max (C-H 1.07 Å, H-H 0.62 Å, O-H 0.97 Å: below bonding distances), so that
    near equilibrium the learnt energy is unchanged. Each atom gets half of each of its pairs.

    Everything that depends only on the two elements (half of Z_i Z_j e^2 / (4 pi eps_0), 1 / a_ij and
    r_ij^max) is tabulated per element pair, so a pair costs three table look-ups and its arithmetic.

    ``hydrogen_pairs=False`` (``pair_repulsion: zbl_heavy``) leaves out the H-H pairs: their switch-off
    (0.62 Å) lies inside the repulsive wall of the H-H bond (equilibrium 0.74 Å), so the envelope turns
    the ZBL force from 25 eV/Å at 0.50 Å to 1 eV/Å at 0.60 Å, steeper than the real wall (PBE labels of
    random CH4: about 23 to 10 eV/Å), and the network has to learn the difference from the few training
    frames that hold such a pair (measured in docs/training.md)."""

    prefactor: torch.Tensor
    inverse_length: torch.Tensor
    switch_off: torch.Tensor

    def __init__(self, species: Sequence[str], cutoff: float, hydrogen_pairs: bool = True) -> None:
        super().__init__()
        numbers = torch.tensor([atomic_numbers[s] for s in species], dtype=torch.float64)
        radii = torch.tensor([float(covalent_radii[atomic_numbers[s]]) for s in species], dtype=torch.float64)
        self.cutoff = float(cutoff)
        self.n_species = len(species)
        # per element pair (i, j), flattened as i * n_species + j
        # e^2 / (4 pi epsilon_0) = 14.399645 eV Å; half of each pair to each atom
        prefactor = 0.5 * 14.399645 * numbers[:, None] * numbers[None, :]
        if not hydrogen_pairs:
            prefactor[(numbers[:, None] == 1) & (numbers[None, :] == 1)] = 0.0
        inverse_length = (numbers[:, None] ** 0.23 + numbers[None, :] ** 0.23) / 0.46850  # 1 / a_ij, Å^-1
        switch_off = torch.clamp(radii[:, None] + radii[None, :], max=self.cutoff)  # r_ij^max, Å
        for name, table in (
            ("prefactor", prefactor),
            ("inverse_length", inverse_length),
            ("switch_off", switch_off),
        ):
            self.register_buffer(name, table.reshape(-1), persistent=False)

    def forward(
        self, distances: torch.Tensor, centre_species: torch.Tensor, neighbour_species: torch.Tensor
    ) -> torch.Tensor:
        """Pair energy in eV given to the centre atom, half of E_ij, per pair: ``distances`` [n] in Å and
        the species indices of the two atoms [n]. Pairs at r >= min(r_max, r_c) give exactly 0."""
        pair = centre_species * self.n_species + neighbour_species
        r_max = self.switch_off.to(distances.dtype).index_select(0, pair)
        inside = distances < r_max
        r = torch.where(inside, distances, r_max)  # beyond r_max: any finite value, the envelope is 0
        x = r * self.inverse_length.to(distances.dtype).index_select(0, pair)  # r / a_ij
        screening = (  # phi(x), the ZBL universal screening function
            0.18175 * torch.exp(-3.19980 * x)
            + 0.50986 * torch.exp(-0.94229 * x)
            + 0.28022 * torch.exp(-0.40290 * x)
            + 0.02817 * torch.exp(-0.20162 * x)
        )
        prefactor = self.prefactor.to(distances.dtype).index_select(0, pair)
        energy = prefactor / r * screening * polynomial_envelope(r / r_max)
        return torch.where(inside, energy, torch.zeros_like(energy))
