"""`gatebench new-submission NAME`: a complete, working submission folder to start from."""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from suite.errors import SubmissionError
from suite.gates.submissions import SUBMISSIONS_DIR

TEMPLATE_DIR = Path(__file__).parent / "templates" / "submission"
NAME = re.compile(r"^[a-z0-9][a-z0-9+._-]*$")


def new_submission(name: str, root: Path = SUBMISSIONS_DIR) -> Path:
    if not NAME.match(name):
        raise SubmissionError(
            f"'{name}' is not a valid gate name: use lower-case letters, digits and + . _ -, "
            "starting with a letter or digit."
        )
    folder = root / name
    if folder.exists():
        raise SubmissionError(f"{folder} already exists; choose another name or remove it.")
    folder.mkdir(parents=True)
    for template in sorted(TEMPLATE_DIR.glob("*.tmpl")):
        text = Template(template.read_text(encoding="utf-8")).substitute(name=name)
        (folder / template.stem).write_text(text, encoding="utf-8")
    return folder
