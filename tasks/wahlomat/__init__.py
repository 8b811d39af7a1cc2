"""Wahl-O-Mat political alignment task (qual-o-mat data, bpb scoring)."""
