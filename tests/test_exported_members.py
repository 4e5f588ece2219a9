"""The public surface is deliberate: this fails when it drifts.

Each private module says what it offers the rest of the package in its ``__all__`` (as anyio's
modules do): every name there exists, every class and function a module defines for others is
there, and the package's public names come from the ``__all__`` of the module defining them.
The CLI is held to the public surface: it imports only what modules export and reaches into
no other object's private members.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import aioregistry

EXPECTED = {
    "Audit", "AuditRow", "AuditSummary", "AuthenticationError", "CacheError", "CacheInfo",
    "ClientStats", "ConfigBlob", "ConnectError", "ContentStore", "Credentials", "CredentialsError",
    "DEFAULT_PLATFORM", "Descriptor", "DigestMismatch", "ErrorDetail", "Forbidden", "ImageIndex",
    "ImageManifest", "InsecureCredentials", "InvalidContent", "InvalidPlatform",
    "InvalidReference", "Limits", "NoMatchingPlatform", "NotFound", "Platform", "ProtocolError",
    "RateLimit", "Reference", "Referrer", "ReferrerKind", "ReferrerSource",
    "RegistryClient", "RegistryError", "RepoType", "Repository",
    "RequestTimeout", "Resolve", "ResponseError", "Retries", "Scan", "ScanError", "ScanResult",
    "ScanStats", "TLSError", "Timeouts", "Token", "TokenCache", "TooManyRequests",
    "TransportError", "Unauthorized", "UnsupportedMediaType", "UsageError", "What",
    "__version__", "parse_rate_limit", "parse_reference", "parse_repository", "referrer_kind",
}  # fmt: skip

PACKAGE = Path(aioregistry.__file__).parent
CLI_MODULES = ("_cli", "_cli_commands", "_cli_scan", "_cli_audit", "_output", "_audit_output")
NO_ALL = {"__main__"}  # the entry point of python -m aioregistry


def _modules() -> list[ModuleType]:
    names = [info.name for info in pkgutil.iter_modules([str(PACKAGE)])]
    assert len(names) > 20  # the walk found the package's modules
    return [importlib.import_module(f"aioregistry.{name}") for name in names if name not in NO_ALL]


def test_all_is_the_expected_public_surface():
    assert set(aioregistry.__all__) == EXPECTED


def test_every_exported_name_exists_and_claims_the_package():
    for name in aioregistry.__all__:
        member = getattr(aioregistry, name)
        module = getattr(member, "__module__", None)
        if module is not None and isinstance(member, type):
            # Public names live in private modules; none leaks from a third-party package.
            assert module.startswith("aioregistry."), (name, module)


def test_every_error_derives_from_registry_error():
    for name in aioregistry.__all__:
        member = getattr(aioregistry, name)
        if isinstance(member, type) and issubclass(member, Exception):
            assert issubclass(member, aioregistry.RegistryError), name


def test_every_module_exports_what_it_defines_for_others():
    for module in _modules():
        exported = module.__dict__.get("__all__")
        assert isinstance(exported, list), f"{module.__name__} has no __all__"
        assert len(exported) == len(set(exported)), module.__name__
        for name in exported:
            assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name}"
        defined = {
            name
            for name, member in vars(module).items()
            if not name.startswith("_")
            and (inspect.isclass(member) or inspect.isfunction(member))
            and member.__module__ == module.__name__
        }
        assert defined <= set(exported), (module.__name__, sorted(defined - set(exported)))


def test_public_names_come_from_the_all_of_their_module():
    exporters = {module.__name__: set(module.__all__) for module in _modules()}
    for name in aioregistry.__all__:
        if name == "__version__":
            continue
        member = getattr(aioregistry, name)
        home = getattr(member, "__module__", None)
        if inspect.isclass(member) or inspect.isfunction(member):
            assert home in exporters, (name, home)
            assert name in exporters[home], f"{name} is not in {home}.__all__"
        else:  # constants and type aliases: some module must export them
            assert any(name in names for names in exporters.values()), name


def test_the_cli_uses_only_what_modules_export():
    exporters = {module.__name__: set(module.__all__) for module in _modules()}
    for name in CLI_MODULES:
        tree = ast.parse((PACKAGE / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                source = f"aioregistry.{node.module}" if node.module else "aioregistry"
                for alias in node.names:
                    assert alias.name in exporters.get(source, set()), (
                        f"{name} imports {alias.name} from {source}, which does not export it"
                    )
            if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                own = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
                dunder = node.attr.startswith("__") and node.attr.endswith("__")
                assert own or dunder, f"{name}:{node.lineno} reaches into .{node.attr}"


def test_import_aioregistry_loads_only_the_version():
    # The public names are imported on first use: the command line's --help and a program
    # that only imports the package pay for no aiohttp.
    code = "import sys, aioregistry; print(sorted(m for m in sys.modules if 'aioregistry' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["['aioregistry',", "'aioregistry._version']"]


def test_the_client_imports_the_scan_machinery_only_to_scan():
    code = (
        "import sys\n"
        "from aioregistry import RegistryClient\n"
        "print(sorted(m for m in sys.modules if m.startswith('aioregistry._scan')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lazy_names_are_the_type_checking_imports():
    # __init__ lists each public name twice: imported under TYPE_CHECKING (for type checkers)
    # and in _HOMES (for __getattr__ at run time). The two must agree.
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    guarded = next(
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )
    imported = {
        (node.module, alias.name)
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    homes = {(module, name) for module, names in aioregistry._HOMES.items() for name in names}
    assert imported == homes
    assert {name for _, name in homes} | {"__version__"} == set(aioregistry.__all__)
