"""One router per area (SPEC.md section 6): each builds commands / queries and calls ``api.services``."""
