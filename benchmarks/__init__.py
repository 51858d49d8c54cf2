"""``make bench``: performance figures, each printed with its conditions and a same-run baseline."""
