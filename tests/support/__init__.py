"""Test infrastructure: real registries, a token issuer and known content.

Nothing here imports ``aioregistry``: these modules are the independent oracle the client's
answers are checked against.
"""
