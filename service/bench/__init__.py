"""``python -m service.bench``: the serving benchmark (``make bench-serve``). Not part of the service image."""
