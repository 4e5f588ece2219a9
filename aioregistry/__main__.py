"""``python -m aioregistry``: the same CLI as the ``aioregistry`` console script."""

from ._cli import console

raise SystemExit(console())
