"""Work centers and versioned routings (operation sequences or DAGs)."""
