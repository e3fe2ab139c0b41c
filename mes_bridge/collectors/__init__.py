"""Machine collectors: protocol clients (OPC UA, Modbus) feeding ``core.MachineSession``, run by ``runner``.

``core`` is protocol-independent; protocol modules are imported lazily by ``runner.client_for`` so a
collector for Modbus machines never needs asyncua loaded, and the reverse.
"""
