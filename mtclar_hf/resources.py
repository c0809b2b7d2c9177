"""Files the package needs beside its code: training recipes, Hub card templates and the demo app.

In the repository they live in the top-level folders the project is known by (`configs/`, `hub_cards/`,
`demo/`). A wheel carries copies of them inside the package (`setup.py` copies them at build time), so a
regular, non-editable install finds them with `importlib.resources`. One lookup serves both layouts.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import InputFileError

# Folder inside the installed package -> (source folder in the repository, files copied into the wheel).
SHIPPED = {
    "recipes": ("configs", "*.yaml"),
    "hub_templates": ("hub_cards", "*.md"),
    "demo_app": ("demo", "app.py"),
}


def package_folder() -> Path:
    """The installed package's folder. Wheels install as plain folders, so the resource root is a real path."""
    return Path(str(resources.files("mtclar_hf")))


def shipped_names(kind: str) -> list[str]:
    """The names of the shipped files of `kind`, from the installed package or else the checkout."""
    package = package_folder()
    source, pattern = SHIPPED[kind]
    for folder in (package / kind, package.parent / source):
        names = sorted(path.name for path in folder.glob(pattern))
        if names:
            return names
    return []


def shipped_file(kind: str, name: str) -> Path:
    """The shipped file `name` of `kind` ("recipes", "hub_templates", "demo_app"): the installed package's copy,
    else the repository's own (an editable install or a checkout)."""
    package = package_folder()
    source = SHIPPED[kind][0]
    for folder in (package / kind, package.parent / source):
        if (folder / name).is_file():
            return folder / name
    raise InputFileError(package.parent / source / name, "not found in the installed package nor in a source checkout")
