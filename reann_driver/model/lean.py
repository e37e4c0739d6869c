"""Which backward pass the orbitals take: autograd's, which keeps every intermediate (fastest), or the
memory-lean one of ``density.OrbitalSums`` and ``radial.CutGaussians``, which keeps only their inputs and
forms the intermediates again. A force pass in evaluation mode takes neither (``REANN.adjoint_pass``,
which keeps no autograd graph over the orbitals); these serve training (a force loss on very large
structures) and models that run autograd's force pass (``runtime.compiled``).

Measured on one CPU core (64-water boxes replicated, T = 3, float64; ``bench/bench_engine.py`` with
``LEAN_SLOTS`` lowered): at 12,288 and 24,576 atoms the lean pass needs 70 and 67 KB of peak memory per
atom instead of 103 and 99, and takes 1.27x and 1.32x the time. It is therefore taken only from ``LEAN_SLOTS``
neighbour slots on (about 33,000 atoms of liquid water at r_c = 5 Å), where memory rather than time
limits a force pass; scripted models always take autograd's.

Tried and not kept (same bench, alternating calls in one process): a middle way whose Functions keep c_j per
slot and the Gaussians, and an ``alpha silu(beta x)`` Function keeping only its input, cut the tensors saved
for the backward pass from 97 to 61 KB per atom (1,536 atoms) but took 1.13-1.23x the time at 192 atoms
(each of the three Functions 4-6 %) and 1.10x at 12,288; the density from the mixed sums directly
(one [n_angular, n_atoms, k] x [k, m] product per L instead of the Gram matrices) took 0.97x at 192 atoms
and 1.09-1.13x at 1,536 under autograd (the force pass without autograd does use it, in blocks of atoms:
see ``density.EmbeddedDensity``).
"""

import torch

LEAN_SLOTS = 1 << 21


@torch.jit.unused  # scripted models never ask (they always take autograd's backward)
def keeps_only_inputs(n_slots: int) -> bool:
    """True when a force pass over ``n_slots`` neighbour slots should take the memory-lean backward."""
    return n_slots >= LEAN_SLOTS
