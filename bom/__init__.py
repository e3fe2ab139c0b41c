"""Versioned bills of materials: explosion, where-used, diff, roll-up and the planner's net requirements."""
