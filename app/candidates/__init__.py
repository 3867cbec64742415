"""Candidate molecules: import into the database, and the in-memory matrix the ranking reads."""
