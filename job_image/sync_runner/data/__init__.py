"""Reference data shipped with the sync image (see README.md for each file's source).

A package, not a bare directory, so the wheel carries the files as package data.
"""
