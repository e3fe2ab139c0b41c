"""``python -m mes_bridge.cli`` is ``mes-bridge``."""

from mes_bridge.cli import main

main()
