"""The use cases depend on the domain, the ports and the errors only: no web framework,
no Stripe SDK, no adapter, no configuration keys."""

import ast
import pathlib
import sys

import pytest

import flask_psp_connector

PACKAGE = pathlib.Path(flask_psp_connector.__file__).parent

USE_CASES = (
    "processor/payments.py",
    "processor/customers.py",
    "processor/express.py",
    "processor/operations.py",
    "processor/settlement.py",
    "processor/health.py",
    "webhooks/events.py",
    "webhooks/plans.py",
    "webhooks/outcomes.py",
    "webhooks/reconcile.py",
    "gateways/commercelayer/actions.py",
    "gateways/hantera/actions.py",
)

#: What a use case may import from the package (a module, or any module under a package).
ALLOWED = (
    "flask_psp_connector.domain",
    "flask_psp_connector.ports",
    "flask_psp_connector.errors",
    "flask_psp_connector.options",
    "flask_psp_connector.retry",
    # The package's own version, as reported by the status route.
    "flask_psp_connector.version",
    # Counters and spans: no I/O of their own, and no-ops until the host app enables them.
    "flask_psp_connector.observability.telemetry",
    # Use cases build on one another.
    "flask_psp_connector.processor.payments",
    "flask_psp_connector.processor.customers",
    "flask_psp_connector.processor.operations",
    "flask_psp_connector.processor.settlement",
    "flask_psp_connector.webhooks.events",
    "flask_psp_connector.webhooks.plans",
    "flask_psp_connector.webhooks.outcomes",
)

#: Each external gateway's own request parsing, or the port of the platform it serves.
GATEWAY_OWN = {
    "gateways/commercelayer/actions.py": ("flask_psp_connector.gateways.commercelayer.payload",),
    "gateways/hantera/actions.py": ("flask_psp_connector.gateways.hantera.port",),
}


def _imported(tree: ast.Module) -> list[str]:
    """Every module imported, ``from package import module`` naming the module itself."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "imports are absolute"
            module = node.module or ""
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                names.append(submodule if _is_package_module(submodule) else module)
    return names


def _is_package_module(name: str) -> bool:
    """Whether ``name`` is a module or package of ours (rather than a name defined in one)."""
    if not _first_party(name):
        return False
    path = PACKAGE.joinpath(*name.split(".")[1:])
    return path.is_dir() or path.with_suffix(".py").is_file()


def _first_party(name: str) -> bool:
    return name == "flask_psp_connector" or name.startswith("flask_psp_connector.")


def _allowed(name: str, extra: tuple[str, ...]) -> bool:
    return any(name == allowed or name.startswith(allowed + ".") for allowed in (*ALLOWED, *extra))


@pytest.mark.parametrize("path", USE_CASES)
def test_a_use_case_imports_only_the_domain_the_ports_and_the_errors(path: str) -> None:
    tree = ast.parse((PACKAGE / path).read_text())
    imported = _imported(tree)
    third_party = sorted({name.split(".")[0] for name in imported if not _first_party(name)}
                         - {"__future__", *sys.stdlib_module_names})
    assert third_party == [], f"{path} imports a library (flask, stripe...): {third_party}"
    extra = GATEWAY_OWN.get(path, ())
    forbidden = sorted({name for name in imported
                        if _first_party(name) and not _allowed(name, extra)})
    assert forbidden == [], f"{path} imports what a use case must not: {forbidden}"


@pytest.mark.parametrize("path", USE_CASES)
def test_a_use_case_reads_no_configuration_key(path: str) -> None:
    tree = ast.parse((PACKAGE / path).read_text())
    reads = [ast.unparse(node) for node in ast.walk(tree)
             if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
             and isinstance(node.slice.value, str) and node.slice.value.isupper()
             and node.slice.value.startswith(("STRIPE_", "PSP_", "CTP_", "COMMERCELAYER_", "HANTERA_"))]
    assert reads == [], f"{path} reads settings by key instead of taking options: {reads}"


def test_the_rule_catches_a_forbidden_import() -> None:
    tree = ast.parse("from flask_psp_connector.stripe.adapter import StripeGateway\nimport flask\n")
    imported = _imported(tree)
    assert "flask" in imported
    assert not _allowed("flask_psp_connector.stripe.adapter", ())
    assert _allowed("flask_psp_connector.domain.money", ())


def test_only_the_stripe_package_imports_stripe() -> None:
    importers = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(("stripe/", "testing/")):
            continue  # the adapter, and the Stripe double production code never imports
        if "stripe" in {name.split(".")[0] for name in _imported(ast.parse(path.read_text()))}:
            importers.append(relative)
    assert importers == []
