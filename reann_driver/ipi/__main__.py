"""``python -m reann_driver.ipi`` is ``reann-driver``."""

from .cli import main

if __name__ == "__main__":
    main()
