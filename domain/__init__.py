"""The rules of EKP: pure Python, no I/O, no web, no database session.

Every business rule from RULES.md lives in this package and nowhere else.
Functions take the current time or date as an argument; nothing here reads a clock.
"""
