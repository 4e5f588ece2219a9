"""How a scan learns what each tag points to: a ``GET`` per tag, or a ``HEAD`` per tag and a
``GET`` only of what the content store does not hold.

A ``GET`` of a tag is one request that brings the manifest; a ``HEAD`` brings only the digest,
so where the manifest must then be fetched it is two. With a store on disk that already
holds a repository's manifests (a re-scan), the ``HEAD`` is all a tag costs, and on Docker
Hub a ``HEAD`` is no pull. The store never says what a tag points to (tags move), so the
choice is made per repository from a sample:

- ``resolve="get"``: always ``GET``; ``"head"``, a digest scan, and Docker Hub: always
  ``HEAD`` (the pull limit counts ``GET``s only);
- otherwise, with no store on disk, or one that holds nothing: ``GET`` (the first scan costs
  what it always has);
- otherwise the first `SAMPLE` tags of the repository are resolved with ``HEAD`` while the
  repository's other tags wait for them; if at least half of the sample's digests are in the
  store (`HIT_SHARE`), the rest are resolved with ``HEAD`` too, else with ``GET``.

The wait costs one round trip per repository; a wrong guess costs at most the sample's
``GET``s, which are needed anyway (README, "The cache").
"""

from __future__ import annotations

import anyio

__all__ = ["HIT_SHARE", "SAMPLE", "Resolution"]

SAMPLE = 8  # tags of a repository resolved with HEAD before the rest are decided
HIT_SHARE = 0.5  # share of the sample found in the store for the rest to use HEAD


class Resolution:
    """One repository's choice between ``HEAD`` and ``GET``, made once from its sample.

    ``fixed`` True or False is a choice made beforehand (no sample); None samples. Call
    `head` before resolving a tag and, for a tag `head` sent as part of the sample,
    `found` once its digest is known (or it failed: ``hit=False``).
    """

    def __init__(self, fixed: bool | None) -> None:
        self._head = fixed
        self._sampled = 0
        self._answered = 0
        self._hits = 0
        self._decided = anyio.Event()
        if fixed is not None:
            self._decided.set()

    @property
    def decided(self) -> bool | None:
        """``HEAD`` (True) or ``GET`` (False) once chosen; None while the sample is out."""
        return self._head if self._decided.is_set() else None

    async def head(self) -> tuple[bool, bool]:
        """(use ``HEAD``, this tag is part of the sample)."""
        if self._decided.is_set():
            assert self._head is not None  # noqa: S101
            return self._head, False
        if self._sampled < SAMPLE:
            self._sampled += 1
            return True, True
        await self._decided.wait()
        assert self._head is not None  # noqa: S101
        return self._head, False

    def found(self, hit: bool) -> None:
        """A sampled tag's outcome: its digest was in the store (``hit``) or not."""
        if self._decided.is_set():
            return
        self._answered += 1
        self._hits += hit
        if self._answered >= SAMPLE:
            self._head = self._hits >= HIT_SHARE * self._answered
            self._decided.set()
