"""Data the package ships: the starter manifest (read with importlib.resources, never by path)."""
