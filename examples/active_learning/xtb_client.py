"""Reference forces for i-PI: GFN2-xTB (tblite) through ASE's i-PI socket client.

    python xtb_client.py UNIX_SOCKET_PATH TEMPLATE.xyz

Connects to i-PI's unix socket (the full path, e.g. /tmp/ipi_al-1234) and answers every request with
GFN2-xTB energies and forces of the molecule in the template, until i-PI ends the run.
"""

from __future__ import annotations

import sys

from ase.calculators.socketio import SocketClient
from ase.io import read
from tblite.ase import TBLite


def main() -> None:
    path, template = sys.argv[1], sys.argv[2]
    atoms = read(template)
    atoms.pbc = False
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    SocketClient(unixsocket=path.removeprefix("/tmp/ipi_")).run(atoms)


if __name__ == "__main__":
    main()
