"""Shared infrastructure of mes-bridge: settings, database engine and metadata, money and quantity helpers.

This package imports no other package of the project, so every package may import it.
"""
