"""mkdocs hooks: the repository's README and CONTRIBUTING as pages of the site.

A page whose source is a line ``--8<-- "README.md"`` gets that file's text (the front page is the
README, the contributing page CONTRIBUTING.md), with the links between those files pointed at
their pages here, before mkdocs checks the links (which it does with ``--strict``).
"""

from __future__ import annotations

import re
from pathlib import Path

PAGES = {"README.md": "index.md", "CONTRIBUTING.md": "contributing.md"}
INCLUDE = re.compile(r'^--8<-- "(?P<file>[^"]+)"\s*$', re.M)
LINK = re.compile(r"\]\((?P<target>" + "|".join(re.escape(k) for k in PAGES) + r")(?P<anchor>#[^)]*)?\)")


def on_page_markdown(markdown: str, *, config, **kwargs) -> str:
    root = Path(config["config_file_path"]).parent

    def include(match: re.Match) -> str:
        return (root / match["file"]).read_text(encoding="utf-8")

    markdown = INCLUDE.sub(include, markdown)
    return LINK.sub(lambda m: f"]({PAGES[m['target']]}{m['anchor'] or ''})", markdown)
