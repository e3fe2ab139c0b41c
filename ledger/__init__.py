"""Stock ledger: items, locations, lots, append-only moves, balances per item x location x lot, moving average.

``ledger.model`` (types) and ``ledger.posting`` (rules) are the pure core (no database); ``ledger.tables`` /
``ledger.repository`` (write path) persist it, ``ledger.service`` posts moves, ``ledger.queries`` reads;
``ledger.importer`` loads master data and opening balances from CSV.
"""
