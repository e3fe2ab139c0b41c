"""``python -m mes_bridge`` is ``mes-bridge``."""

from mes_bridge.cli import main

main()
