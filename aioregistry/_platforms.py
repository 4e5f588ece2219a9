"""Which index entries a platform can run, and which of them is best: containerd's rule.

containerd's ``platforms`` package (v1.0.0-rc.4, ``database.go`` and ``compare.go``) is what
``docker pull``, ``nerdctl`` and BuildKit use to pick an image from an index, so it is what a
user expects ``--platform`` to pick here:

- Both sides are normalised first (``normalizeArch``): case is folded; ``x86_64`` is
  ``amd64``, ``aarch64`` is ``arm64``, ``i386`` is ``386``, ``armhf`` is ``arm/v7``, ``armel`` is
  ``arm/v6``, ``macos`` is ``darwin``. An ``arm`` entry without a variant is ``arm/v7`` (the
  default ARM variant); ``arm64/v8`` is plain ``arm64`` and ``amd64/v1`` plain ``amd64``, so an
  ``arm64`` entry without a variant and an ``arm64/v8`` entry are the same platform.
- ``Only(wanted)`` accepts, in order of preference, the platforms the wanted one can run
  (``platformVector``): ``arm/v7`` runs v7, then v6, then v5; ``arm64/v9.2`` runs v9.2 down to
  v9, then v8.7 down to v8, then 32-bit ``arm/v8`` down to v5; ``amd64/v3`` runs v3, v2, v1,
  then ``386``. A wanted platform without a variant is its default variant, so ``linux/amd64``
  accepts ``amd64`` (and ``386``) but not ``amd64/v2``, which needs a newer CPU than it said.
- An entry's ``os.features`` must all be wanted (Windows's ``win32k`` aside). ``os.version``
  counts on Windows only, and only when both sides name one; then the build must be the same
  (containerd asks its host-compatibility table, and a registry client has no host to ask).
- ``Ordered`` preference: the entry matched by the earliest platform of that list wins, not
  the first entry of the index; an entry with more matching ``os.features`` wins a tie.

One tie-break is ours: among entries containerd ranks equal, the one whose variant is written
as the wanted one (``linux/arm64/v8`` prefers an entry spelt ``v8`` to a variant-less one, and
``linux/arm64`` the variant-less one); then index order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PlatformMatcher", "normalize"]

_ARM64_VERSIONS: dict[str, tuple[tuple[int, int], ...]] = {
    # variant -> (major, highest minor) for each major it runs, from containerd's
    # arm64variantToVersion: v9.x also runs v8.(x+5), capped at v8.9.
    "v8": ((8, 0),),
    "v8.0": ((8, 0),),
    **{f"v8.{minor}": ((8, minor),) for minor in range(1, 10)},
    "v9": ((9, 0), (8, 5)),
    "v9.0": ((9, 0), (8, 5)),
    **{f"v9.{minor}": ((9, minor), (8, min(minor + 5, 9))) for minor in range(1, 8)},
}

_Key = tuple[str, str, str]  # normalised (os, architecture, variant)


def normalize(os: str, architecture: str, variant: str | None) -> _Key:
    """containerd's ``Normalize`` of ``os``, ``architecture`` and ``variant`` ("" for none)."""
    os = os.lower()
    if os == "macos":
        os = "darwin"
    arch, var = architecture.lower(), (variant or "").lower()
    if arch == "i386":
        arch, var = "386", ""
    elif arch in {"x86_64", "x86-64", "amd64"}:
        arch = "amd64"
        var = "" if var == "v1" else var
    elif arch in {"aarch64", "arm64"}:
        arch = "arm64"
        var = {"8": "", "v8": "", "v8.0": "", "9": "v9", "9.0": "v9", "v9.0": "v9"}.get(var, var)
    elif arch == "armhf":
        arch, var = "arm", "v7"
    elif arch == "armel":
        arch, var = "arm", "v6"
    elif arch == "arm":
        var = {"": "v7", "7": "v7", "5": "v5", "6": "v6", "8": "v8"}.get(var, var)
    return os, arch, var


def _version(variant: str) -> int | None:
    """The number of a ``vN`` variant (``v7`` is 7), as Go's ``Atoi(TrimPrefix(v, "v"))``."""
    digits = variant.removeprefix("v")
    return int(digits) if digits.isdigit() else None


def _vector(os: str, arch: str, variant: str) -> list[_Key]:
    """containerd's ``platformVector``: what a normalised platform runs, best first."""
    if arch == "arm64":
        var = variant or "v8"
        vector = [
            (os, "arm64", f"v{major}" if minor == 0 else f"v{major}.{minor}")
            for major, top in _ARM64_VERSIONS.get(var, ())
            for minor in range(top, -1, -1)
        ]
        if var.startswith(("v8", "v9")):
            var = "v8"
        return [normalize(*key) for key in vector] + _vector(os, "arm", var)
    vector = [(os, arch, variant)]
    number = _version(variant)
    if arch == "amd64":
        if number is not None and number > 1:
            vector += [(os, arch, f"v{n}") for n in range(number - 1, 0, -1)]
        vector.append((os, "386", ""))
    elif arch == "arm" and number is not None and number > 5:
        vector += [(os, arch, f"v{n}") for n in range(number - 1, 4, -1)]
    return [normalize(*key) for key in vector]


def _build(os_version: str | None) -> tuple[str, ...]:
    return tuple((os_version or "").split(".")[:3])


@dataclass(frozen=True, slots=True)
class PlatformMatcher:
    """``Only(wanted)``: `rank` says whether an entry matches and how well."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: Sequence[str] = ()

    def rank(
        self,
        os: str,
        architecture: str,
        variant: str | None,
        os_version: str | None = None,
        os_features: Sequence[str] = (),
    ) -> tuple[int, int, int] | None:
        """None when the entry does not match, else a key that sorts the best entry first."""
        key = normalize(os, architecture, variant)
        wanted = normalize(self.os, self.architecture, self.variant)
        try:
            position = _vector(*wanted).index(key)
        except ValueError:
            return None
        features = set(os_features)
        if key[0] == "windows":
            features.discard("win32k")  # containerd's windowsStripFeaturesMatcher
        if not features <= set(self.os_features):
            return None
        if (
            key[0] == "windows"
            and self.os_version
            and os_version
            and _build(self.os_version) != _build(os_version)
        ):
            return None
        spelt = (variant or "").lower() == (self.variant or "").lower()
        return position, -len(features), 0 if spelt else 1
