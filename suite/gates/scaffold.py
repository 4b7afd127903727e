"""`gatebench new-submission NAME`: a complete, working submission folder to start from."""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from suite.errors import SubmissionError
from suite.gates.submissions import SUBMISSIONS_DIR

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE_DIR = TEMPLATES / "submission"  # a router; other kinds: templates/submission-<kind>/
NAME = re.compile(r"^[a-z0-9][a-z0-9+._-]*$")


def template_dir(kind: str) -> Path:
    folder = TEMPLATE_DIR if kind == "router" else TEMPLATES / f"submission-{kind}"
    if not folder.is_dir():
        others = sorted(p.name.removeprefix("submission-") for p in TEMPLATES.glob("submission-*"))
        kinds = ["router", *others]
        raise SubmissionError(f"No template for kind '{kind}'; templates exist for {kinds}.")
    return folder


def new_submission(name: str, root: Path = SUBMISSIONS_DIR, kind: str = "router") -> Path:
    if not NAME.match(name):
        raise SubmissionError(
            f"'{name}' is not a valid gate name: use lower-case letters, digits and + . _ -, "
            "starting with a letter or digit."
        )
    templates = template_dir(kind)
    folder = root / name
    if folder.exists():
        raise SubmissionError(f"{folder} already exists; choose another name or remove it.")
    folder.mkdir(parents=True)
    for template in sorted(templates.glob("*.tmpl")):
        text = Template(template.read_text(encoding="utf-8")).substitute(name=name)
        (folder / template.stem).write_text(text, encoding="utf-8")
    return folder
