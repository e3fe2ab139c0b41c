"""Where a figure comes from: a machine (sensor), an operator's scan, or typed by hand."""

from enum import StrEnum


class Provenance(StrEnum):
    SENSOR = "sensor"
    SCAN = "scan"
    MANUAL = "manual"
