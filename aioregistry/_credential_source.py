"""The credential lookup chain: which credentials a registry gets, and from where."""

from __future__ import annotations

import os
from collections.abc import Mapping

from ._config_files import HELPER_TIMEOUT, ConfigFiles
from ._credentials import Credentials, CredentialsLike, as_credentials
from ._references import registry_key

__all__ = ["CredentialSource"]

_ANONYMOUS = "anonymous"


class CredentialSource:
    """Where credentials for a registry come from; the first source that has some wins.

    1. ``explicit``: a mapping of registry hosts to credentials, or one `Credentials` for
       every registry (the CLI's ``--username``/``--password-stdin``);
    2. ``DOCKER_USER`` / ``DOCKER_PASSWORD`` (the old bash functions' variables), for whichever
       registry the client talks to;
    3. docker's ``config.json`` (helpers, ``credsStore``, ``auths``), then containers'
       ``auth.json`` files (`ConfigFiles`), unless ``use_config_files`` is false;
    4. anonymous.

    `lookup` answers from 1 and 2 without I/O; `resolve` (async: helpers are processes) goes
    through all four and remembers, per host, what it answered last (`last`), for messages.
    """

    def __init__(
        self,
        explicit: Mapping[str, CredentialsLike] | CredentialsLike | None = None,
        *,
        use_env: bool = True,
        use_config_files: bool = False,
        environ: Mapping[str, str] | None = None,
        helper_timeout: float = HELPER_TIMEOUT,
    ) -> None:
        self._explicit: dict[str, Credentials] = {}
        self._any: Credentials | None = None
        if isinstance(explicit, (Credentials, tuple)):
            self._any = as_credentials(explicit)
        else:
            for host, given in (explicit or {}).items():
                self._explicit[registry_key(host)] = as_credentials(given)
        env = os.environ if environ is None else environ
        user, password = env.get("DOCKER_USER"), env.get("DOCKER_PASSWORD")
        self._env = Credentials(user, password) if use_env and user and password else None
        self._files: ConfigFiles | None = None
        if use_config_files:
            self._files = ConfigFiles(environ, helper_timeout=helper_timeout)
        self._last: dict[str, tuple[Credentials | None, str]] = {}

    @property
    def config_files(self) -> ConfigFiles | None:
        """The config-file source, when it is on (tests read its ``helper_runs``)."""
        return self._files

    def lookup(self, registry: str) -> tuple[Credentials | None, str]:
        """Explicit or environment credentials for ``registry`` and where they came from."""
        creds = self._explicit.get(registry_key(registry)) or self._any
        if creds is not None:
            return creds, "explicit credentials"
        if self._env is not None:
            return self._env, "DOCKER_USER/DOCKER_PASSWORD"
        return None, _ANONYMOUS

    async def resolve(
        self, registry: str, repository: str | None = None
    ) -> tuple[Credentials | None, str]:
        """Credentials for ``registry`` (``repository`` picks path-scoped auth.json entries)."""
        answer = self.lookup(registry)
        if answer[0] is None and self._files is not None:
            found = await self._files.find(registry, repository)
            if found is not None:
                answer = (found.credentials, found.source)
        self._last[registry_key(registry)] = answer
        return answer

    def last(self, registry: str) -> tuple[Credentials | None, str]:
        """What `resolve` last answered for ``registry`` (`lookup` if it never ran)."""
        return self._last.get(registry_key(registry)) or self.lookup(registry)
