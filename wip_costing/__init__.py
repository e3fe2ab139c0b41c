"""Work orders, the one ``apply(events)`` path, per-operation WIP pools, cost rules, journal and valuation."""
