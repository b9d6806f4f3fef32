"""The sub-packages import one another in one direction: the game (envs) at the bottom, then the
action levels (actions), then the agents and everything that uses them. Read from the source
(ast), so a cycle is caught before it bites at import time."""

import ast
from pathlib import Path

import crossagent

PACKAGE = Path(crossagent.__file__).parent
# Sub-package -> the only other sub-packages it may import.
MAY_IMPORT = {
    "envs": set(),
    "actions": {"envs"},
    "tasks": {"envs"},
    "executors": {"envs", "actions"},
}
# A sub-package's cli.py registers its commands: an entry point that only crossagent.cli imports, so it
# sits above every layer (`mc build-dataset` runs data/'s builders).
ENTRY_POINT = "cli.py"


def imported_subpackages(source: str, importer: tuple[str, ...]) -> set[str]:
    """The crossagent sub-packages that a module imports; `importer` is its path in the package
    (("actions", "skill") for crossagent.actions.skill), to resolve relative imports."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            package = ["crossagent", *importer[:len(importer) - node.level]]
            names.append(".".join([*package, node.module] if node.module else package))
        elif isinstance(node, ast.ImportFrom) and node.module == "crossagent":
            names += [f"crossagent.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module)
    return {name.split(".")[1] for name in names if name.startswith("crossagent.")}


def test_lower_layers_import_only_what_is_below_them():
    crossings = []
    for subpackage, allowed in MAY_IMPORT.items():
        for module in sorted(path for path in (PACKAGE / subpackage).rglob("*.py") if path.name != ENTRY_POINT):
            importer = module.relative_to(PACKAGE).with_suffix("").parts
            for imported in imported_subpackages(module.read_text(), importer) - allowed - {subpackage}:
                crossings.append(f"{module.relative_to(PACKAGE)} imports crossagent.{imported}")
    assert not crossings, "\n".join(crossings)


def test_every_form_of_an_upward_import_is_seen():
    importer = ("actions", "skill")
    assert imported_subpackages("import crossagent.agents.oracle", importer) == {"agents"}
    assert imported_subpackages("from crossagent.agents.expert import ExpertAgent", importer) == {"agents"}
    assert imported_subpackages("from crossagent import agents", importer) == {"agents"}
    assert imported_subpackages("from ..agents import expert", importer) == {"agents"}
    assert imported_subpackages("def f():\n    from crossagent.agents import expert", importer) == {"agents"}
    assert imported_subpackages("from . import grounding\nimport crafter", importer) == {"actions"}


def test_only_the_command_line_imports_the_entry_points():
    importers = [module.relative_to(PACKAGE) for module in sorted(PACKAGE.rglob("*.py"))
                 if module.name != ENTRY_POINT and any(
                     isinstance(node, ast.ImportFrom) and (node.module or "").endswith(".cli")
                     for node in ast.walk(ast.parse(module.read_text())))]
    assert importers == [], importers
