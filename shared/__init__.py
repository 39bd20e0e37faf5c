"""The record model both sides agree on: HLC, record kinds, merge and the case-status fold.

Pure Python: no Flask, no Kivy, no I/O, no clock reads.
"""
