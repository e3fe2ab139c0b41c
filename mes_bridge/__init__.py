"""The service shell of mes-bridge: settings wiring, schema, collectors, spool and forwarder, simulators, CLI."""
