"""The guide pages of the site: ``docs/*.md``, ``README.md`` and ``SUBMITTING.md`` rendered with
markdown-it-py (CommonMark with tables; raw HTML is escaped, never passed through, and a line
that is only an HTML comment, such as a generated block's marker, is left out).

The Markdown stays readable on a code host; here its links are rewritten for the site: a link to
another guide page goes to that page's HTML, a link into the source tree (a module, a folder) is
kept as text, since the site carries no source."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from markdown_it import MarkdownIt

if TYPE_CHECKING:
    from suite.website.renderer import Renderer

TOP_LEVEL = {"README.md": "readme", "SUBMITTING.md": "submitting"}
COMMENT_LINE = re.compile(r"^<!--.*-->[ \t]*\n?", re.M)  # hidden on a code host, so here too


@dataclass(frozen=True)
class GuidePage:
    source: Path  # the Markdown file
    name: str  # the page's file name under guide/, without .html
    title: str


def guide_sources(checkout: Path) -> list[GuidePage]:
    """Every guide page of a checkout: the guide's index first, then docs/ by name, then the
    README and SUBMITTING.md."""
    docs = checkout / "docs"
    files = sorted(docs.glob("*.md"), key=lambda p: (p.stem != "index", p.stem))
    files += [checkout / name for name in TOP_LEVEL if (checkout / name).is_file()]
    pages = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        first = next((line for line in text.splitlines() if line.startswith("# ")), path.stem)
        name = TOP_LEVEL.get(path.name, path.stem) if path.parent != docs else path.stem
        pages.append(GuidePage(path, name, first.lstrip("# ").strip()))
    return pages


def _target(href: str, page: GuidePage, known: dict[Path, str]) -> str | None:
    """The site's href for a link of ``page``'s Markdown; None to keep the text unlinked."""
    if "://" in href or href.startswith(("#", "mailto:")):
        return href
    path, _, anchor = href.partition("#")
    resolved = (page.source.parent / PurePosixPath(path)).resolve()
    name = known.get(resolved)
    if name is None:
        return None
    return f"{name}.html" + (f"#{anchor}" if anchor else "")


def render_markdown(page: GuidePage, known: dict[Path, str]) -> str:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(COMMENT_LINE.sub("", page.source.read_text(encoding="utf-8")))
    for token in tokens:
        unlinking = False  # links do not nest: a close ends the link its open began
        for child in token.children or []:
            if child.type == "link_open":
                href = _target(str(child.attrGet("href") or ""), page, known)
                unlinking = href is None
                if unlinking:  # a link into the source tree: its text stays, unlinked
                    child.type, child.tag, child.attrs, child.content = "text", "", {}, ""
                else:
                    child.attrSet("href", href)
            elif child.type == "link_close" and unlinking:
                child.type, child.tag, child.content = "text", "", ""
                unlinking = False
    return md.renderer.render(tokens, md.options, {})


def guide_pages(site: Renderer) -> list[GuidePage]:
    """Render every guide page into ``guide/``; returns them (for the navigation)."""
    checkout = site.templates.parent
    pages = guide_sources(checkout)
    known = {p.source.resolve(): p.name for p in pages}
    for page in pages:
        site.render(
            "guide.html",
            f"guide/{page.name}.html",
            page=page,
            pages=pages,
            body=render_markdown(page, known),
        )
    return pages
