"""The bottom of the empirical layer: what the experiments read and write, and what they run on.

Inputs (``data``: digits, image folders, ImageNet's class list; ``streaming``: images delivered batch by
batch), results (``tables``: the columns of every table; ``chunks``: the resumable chunk store and atomic
writes; ``manifest``: ``manifest.json`` and package versions), ``fingerprints`` of what a chunk was computed
from, ``threads`` (the CPU threads of a command) and ``distributed`` (the ranks of a ``torchrun`` and their
share of the chunks). It imports none of the experiments or of the driver above them (``empirical.run``).
"""
