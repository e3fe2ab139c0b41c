"""Stock ledger: items, locations, lots, append-only moves, balances per item x location x lot, moving average.

``ledger.model`` is the pure core (no database); ``ledger.tables`` / ``ledger.repository`` persist it;
``ledger.importer`` loads master data and opening balances from CSV.
"""
