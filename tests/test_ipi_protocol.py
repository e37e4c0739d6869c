"""The driver's i-PI protocol against in-process servers: a fake i-PI for the batched layout, ASE's
SocketIOCalculator for the single-structure path; units and signs against finite differences."""

from __future__ import annotations

import copy
import socket
import threading
import uuid

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.calculators.socketio import SocketClient, SocketIOCalculator
from conftest import randomised

import reann_driver
from reann_driver.ipi import protocol
from reann_driver.ipi.client import Address, connect, serve
from reann_driver.ipi.evaluator import (
    ANGSTROM_PER_BOHR,
    HARTREE_PER_EV,
    BatchEvaluator,
    StructureError,
    TemplateError,
)
from reann_driver.ipi.plugin import REANNDriver


@pytest.fixture(scope="module")
def model() -> reann_driver.REANN:
    torch.manual_seed(1)
    return randomised(
        reann_driver.REANN(["H", "C"], cutoff=4.0, n_radial=4, l_max=1, hidden=(16, 16), iterations=1)
    )


def methane_box(seed: int) -> Atoms:
    """Two CH4 in a small triclinic periodic box, slightly rattled (periodic images within the cutoff)."""
    atoms = molecule("CH4")
    other = molecule("CH4")
    other.translate([2.6, 0.4, 0.3])
    atoms += other
    atoms.set_cell([[5.5, 0.0, 0.0], [0.6, 5.2, 0.0], [0.3, -0.4, 5.8]])
    atoms.pbc = True
    atoms.rattle(0.05, seed=seed)
    return atoms


def ipi_arrays(atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """i-PI's h (lattice vectors as columns) and positions, in Bohr."""
    return np.asarray(atoms.cell).T / ANGSTROM_PER_BOHR, atoms.positions / ANGSTROM_PER_BOHR


class FakeIPI:
    """The server side of i-PI's protocol over a socket pair, as ``ipi/interfaces/sockets.py`` speaks it."""

    def __init__(self, evaluator: BatchEvaluator) -> None:
        self.server, client = socket.socketpair()
        self.server.settimeout(10)
        self.session = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.session = serve(client, evaluator)
            except BaseException as error:
                self.error = error
            finally:
                client.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def status(self) -> bytes:
        self.server.sendall(protocol.STATUS)
        return protocol.receive_exactly(self.server, 12)

    def init(self, text: str) -> None:
        blob = text.encode()
        self.server.sendall(protocol.INIT + np.int32(0).tobytes() + np.int32(len(blob)).tobytes() + blob)

    def posdata(self, cells: list[np.ndarray], positions: list[np.ndarray], batched: bool) -> bytes:
        natoms = np.int32(len(positions[0])).tobytes()
        if not batched:
            h = cells[0]
            return (
                protocol.POSDATA + h.tobytes() + np.linalg.inv(h).tobytes() + natoms + positions[0].tobytes()
            )
        blocks = b"".join(h.tobytes() + np.linalg.inv(h).tobytes() for h in cells)
        return protocol.POSDATA + natoms + blocks + b"".join(p.tobytes() for p in positions)

    def read_forces(self, n_structures: int, n_atoms: int) -> tuple[np.ndarray, ...]:
        assert protocol.receive_exactly(self.server, 12) == protocol.FORCEREADY
        energies = protocol.receive_array(self.server, protocol.FLOAT, n_structures)
        assert protocol.receive_int(self.server) == n_atoms
        forces = protocol.receive_array(self.server, protocol.FLOAT, n_structures * n_atoms * 3)
        virials = protocol.receive_array(self.server, protocol.FLOAT, n_structures * 9)
        extras = [
            protocol.receive_exactly(self.server, protocol.receive_int(self.server)).decode()
            for _ in range(n_structures)
        ]
        return energies, forces.reshape(n_structures, n_atoms, 3), virials.reshape(n_structures, 3, 3), extras

    def exit(self) -> None:
        self.server.sendall(protocol.EXIT)
        self.thread.join(5)
        self.server.close()


def test_batched_exchange_both_message_orders(model):
    structures = [methane_box(seed) for seed in range(3)]
    evaluator = BatchEvaluator(model, structures[0].get_chemical_symbols(), periodic=True, extras=True)
    fake = FakeIPI(evaluator)
    assert fake.status() == protocol.NEEDINIT
    fake.init("some parameters, batch_size:3")
    assert fake.status() == protocol.READY
    cells, positions = zip(*(ipi_arrays(a) for a in structures))
    # consolidated order: POSDATA and GETFORCE in one write, as i-PI 3.3 does
    fake.server.sendall(fake.posdata(list(cells), list(positions), batched=True) + protocol.GETFORCE)
    energies, forces, virials, extras = fake.read_forces(3, len(structures[0]))
    # classic order: POSDATA, STATUS -> HAVEDATA, GETFORCE
    fake.server.sendall(fake.posdata(list(cells), list(positions), batched=True))
    assert fake.status() == protocol.HAVEDATA
    fake.server.sendall(protocol.GETFORCE)
    energies_again = fake.read_forces(3, len(structures[0]))[0]
    assert fake.status() == protocol.READY
    fake.exit()
    assert fake.error is None and fake.session is not None and fake.session.exit_received
    assert fake.session.batch_size == 3 and fake.session.n_structures == 6
    np.testing.assert_array_equal(energies, energies_again)

    calculator = reann_driver.REANNCalculator(model)
    for k, atoms in enumerate(structures):
        atoms.calc = calculator
        assert energies[k] / HARTREE_PER_EV == pytest.approx(atoms.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(
            forces[k] / (HARTREE_PER_EV * ANGSTROM_PER_BOHR), atoms.get_forces(), atol=1e-9
        )
        # i-PI's virial: -dE/d(strain) = -stress * volume (ASE sign convention for stress)
        stress = atoms.get_stress(voigt=False)
        np.testing.assert_allclose(virials[k] / HARTREE_PER_EV, -stress.T * atoms.get_volume(), atol=1e-9)
        assert extras[k].startswith('{"atomic_energies"')


def test_forces_and_virial_are_derivatives_in_atomic_units(model):
    atoms = methane_box(7)
    evaluator = BatchEvaluator(model, atoms.get_chemical_symbols(), periodic=True)
    h, positions = ipi_arrays(atoms)
    result = evaluator.evaluate(h[None], positions[None])
    step = 1e-4  # Bohr, and dimensionless strain

    def energy(h_: np.ndarray, positions_: np.ndarray) -> float:
        return float(evaluator.evaluate(h_[None], positions_[None]).energies[0])

    for atom, axis in [(0, 0), (3, 2), (7, 1)]:
        plus, minus = positions.copy(), positions.copy()
        plus[atom, axis] += step
        minus[atom, axis] -= step
        derivative = (energy(h, plus) - energy(h, minus)) / (2 * step)
        assert result.forces[0, atom, axis] == pytest.approx(-derivative, rel=1e-6, abs=1e-9)
    for a, b in [(0, 0), (1, 2), (2, 1), (2, 2)]:
        # deformation x -> (1 + s) x with one component s_ab; the energy is rotation invariant, so
        # -dE/ds_ab is the (symmetric) virial component whatever the symmetry of s
        strain = np.zeros((3, 3))
        strain[a, b] = step
        energies = [
            energy((np.eye(3) + sign * strain) @ h, positions @ (np.eye(3) + sign * strain).T)
            for sign in (1, -1)
        ]
        derivative = (energies[0] - energies[1]) / (2 * step)
        assert result.virials[0, a, b] == pytest.approx(-derivative, rel=1e-5, abs=1e-9)


def test_single_structure_path_against_ase_socketio_server(model):
    atoms = methane_box(3)
    reference = atoms.copy()
    reference.calc = reann_driver.REANNCalculator(model)
    evaluator = BatchEvaluator(model, atoms.get_chemical_symbols(), periodic=True)
    name = f"reann-test-{uuid.uuid4().hex[:8]}"
    outcome = []

    def client() -> None:
        sock = connect(Address(unix_path=f"/tmp/ipi_{name}"), wait=20)
        with sock:
            try:
                serve(sock, evaluator)
            except protocol.ConnectionClosed:  # ASE's server closes without EXIT
                outcome.append("closed")

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    with SocketIOCalculator(unixsocket=name) as calculator:
        atoms.calc = calculator
        for _ in range(2):
            energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
            # ASE converts with its own Bohr/Hartree; i-PI's (used by the driver) differ from the 8th digit
            assert energy == pytest.approx(reference.get_potential_energy(), rel=1e-6)
            np.testing.assert_allclose(forces, reference.get_forces(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(stress, reference.get_stress(), rtol=1e-5, atol=1e-7)
            atoms.rattle(0.02, seed=5)
            reference.positions = atoms.positions
    thread.join(5)
    assert outcome == ["closed"]


def test_reann_calculator_under_ase_socket_client(model):
    """ASE's own client (no batching) serving REANNCalculator to an ASE socket server."""
    atoms = methane_box(4)
    served = atoms.copy()
    served.calc = reann_driver.REANNCalculator(model)
    name = f"reann-test-{uuid.uuid4().hex[:8]}"

    def client() -> None:
        import time

        for _ in range(200):
            try:
                SocketClient(unixsocket=name).run(served, use_stress=True)
                return
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.05)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    with SocketIOCalculator(unixsocket=name) as calculator:
        atoms.calc = calculator
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    thread.join(5)
    reference = atoms.copy()
    reference.calc = reann_driver.REANNCalculator(model)
    assert energy == pytest.approx(reference.get_potential_energy(), rel=1e-9)
    np.testing.assert_allclose(forces, reference.get_forces(), rtol=1e-9, atol=1e-12)


def test_plugin_single_and_batched_calls_agree(model, tmp_path):
    atoms = methane_box(9)
    model.save(str(tmp_path / "m.pt"))
    atoms.write(tmp_path / "t.xyz")
    driver = REANNDriver(model=str(tmp_path / "m.pt"), template=str(tmp_path / "t.xyz"), verbosity=1)
    h, positions = ipi_arrays(atoms)
    single = driver.compute(h, positions)
    moved = positions.copy()
    moved[0] += 0.05
    batch = driver.compute([h, h], [positions, moved])
    assert len(batch) == 2
    assert batch[0][0] == pytest.approx(single[0], abs=1e-12)
    np.testing.assert_allclose(batch[0][1], single[1], atol=1e-12)
    np.testing.assert_allclose(batch[0][2], single[2], atol=1e-12)
    assert batch[1][0] != pytest.approx(single[0], abs=1e-12)


def test_wrong_atom_count_and_nan_positions_are_clear_errors(model):
    atoms = methane_box(2)
    evaluator = BatchEvaluator(model, atoms.get_chemical_symbols()[:-1], periodic=True, template_name="t.xyz")
    h, positions = ipi_arrays(atoms)
    with pytest.raises(TemplateError, match=r"i-PI sends 10 atoms .* t.xyz has 9 atoms"):
        evaluator.evaluate(h[None], positions[None])
    evaluator = BatchEvaluator(model, atoms.get_chemical_symbols(), periodic=True)
    positions[4, 1] = np.nan
    with pytest.raises(StructureError, match=r"non-finite positions .* atom 4"):
        evaluator.evaluate(h[None], positions[None])
    with pytest.raises(StructureError, match="--non-periodic"):
        evaluator.evaluate(np.zeros((1, 3, 3)), np.zeros((1, 10, 3)))


def test_unknown_element_in_template(model):
    with pytest.raises(TemplateError, match=r"O"):
        BatchEvaluator(model, ["C", "O"], template_name="water.xyz")


def test_batch_size_parsing():
    assert protocol.parse_batch_size("") == 1
    assert protocol.parse_batch_size(" batch_size:8") == 8
    assert protocol.parse_batch_size("foo:1, batch_size:32") == 32
    assert protocol.parse_batch_size("my_batch_size:4") == 1
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_batch_size("batch_size:0")


def test_closed_connection_is_reported():
    server, client = socket.socketpair()
    server.close()
    with pytest.raises(protocol.ConnectionClosed):
        serve(client, evaluator=None)  # type: ignore[arg-type]
    client.close()


def test_padded_batch_gets_copies_of_the_last_result(model):
    """i-PI pads an incomplete batch with copies of its last structure; they are answered, not recomputed."""
    structures = [methane_box(seed) for seed in (11, 12)]
    evaluator = BatchEvaluator(model, structures[0].get_chemical_symbols(), periodic=True)
    fake = FakeIPI(evaluator)
    assert fake.status() == protocol.NEEDINIT
    fake.init("batch_size:4")
    cells, positions = zip(*(ipi_arrays(a) for a in structures))
    padded_cells, padded_positions = [*cells, cells[1], cells[1]], [*positions, positions[1], positions[1]]
    fake.server.sendall(fake.posdata(padded_cells, padded_positions, batched=True) + protocol.GETFORCE)
    energies, forces, virials, _ = fake.read_forces(4, len(structures[0]))
    fake.exit()
    assert fake.session is not None and fake.session.n_evaluated == 2
    reference = evaluator.evaluate(np.stack(cells), np.stack(positions))
    np.testing.assert_array_equal(energies, reference.energies[[0, 1, 1, 1]])
    np.testing.assert_array_equal(forces, reference.forces[[0, 1, 1, 1]])
    np.testing.assert_array_equal(virials, reference.virials[[0, 1, 1, 1]])


def test_float32_model_still_sends_float64(model):
    atoms = methane_box(5)
    h, positions = ipi_arrays(atoms)
    double = BatchEvaluator(model, atoms.get_chemical_symbols(), periodic=True)
    single = BatchEvaluator(copy.deepcopy(model), atoms.get_chemical_symbols(), dtype="float32")
    assert single.model.dtype == torch.float32
    reference, result = double.evaluate(h[None], positions[None]), single.evaluate(h[None], positions[None])
    assert result.energies.dtype == np.float64 and result.forces.dtype == np.float64
    assert result.energies[0] == pytest.approx(reference.energies[0], rel=1e-5)
    np.testing.assert_allclose(result.forces, reference.forces, rtol=1e-3, atol=1e-6)


def test_inet_connection_disables_nagle():
    with socket.create_server(("localhost", 0)) as listener:
        port = listener.getsockname()[1]
        with connect(Address(host="localhost", port=port), wait=5) as sock:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
