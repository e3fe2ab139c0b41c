"""The worked example's items and locations, plus a second stores location."""

from ledger.model import Item, ItemKind, Location, LocationKind

ITEMS = [
    Item("RM-STEEL", "Steel blank", "pcs", ItemKind.RAW),
    Item("RM-BOLT", "Bolt M8x20", "pcs", ItemKind.RAW),
    Item("FG-BRACKET", "Mounting bracket", "pcs", ItemKind.FINISHED),
]
LOCATIONS = [
    Location("STORES", "Raw material stores", LocationKind.STORES),
    Location("WIP", "Shop floor", LocationKind.WIP),
    Location("FG", "Finished goods", LocationKind.FINISHED),
    Location("SCRAP", "Scrap bin", LocationKind.SCRAP),
    Location("QUAR", "Quarantine", LocationKind.QUARANTINE),
    Location("STORES-2", "Second stores", LocationKind.STORES),
]
