"""Drills: the proofs that need real processes, real sockets or a real PostgreSQL (all marked slow)."""
