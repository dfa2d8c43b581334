"""mkdocs hooks: the repository's README and CONTRIBUTING as pages of the site.

A page whose source is a line ``--8<-- "README.md"`` gets that file's text (the front page is the
README, the contributing page CONTRIBUTING.md), with the links between those files pointed at
their pages here, before mkdocs checks the links (which it does with ``--strict``). The figures
those files show (``![...](path.png)``, paths in the repository) become files of the site at the
same paths, so that the front page shows them as the repository does.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

PAGES = {"README.md": "index.md", "CONTRIBUTING.md": "contributing.md"}
INCLUDE = re.compile(r'^--8<-- "(?P<file>[^"]+)"\s*$', re.M)
IMAGE = re.compile(r"!\[[^\]]*\]\((?P<path>[^)\s]+\.png)\)")
LINK = re.compile(r"\]\((?P<target>" + "|".join(re.escape(k) for k in PAGES) + r")(?P<anchor>#[^)]*)?\)")


def on_page_markdown(markdown: str, *, config, **kwargs) -> str:
    root = Path(config["config_file_path"]).parent

    def include(match: re.Match) -> str:
        return (root / match["file"]).read_text(encoding="utf-8")

    markdown = INCLUDE.sub(include, markdown)
    return LINK.sub(lambda m: f"]({PAGES[m['target']]}{m['anchor'] or ''})", markdown)


def on_files(files, *, config):
    root = Path(config["config_file_path"]).parent
    figures = {m["path"] for name in PAGES for m in IMAGE.finditer((root / name).read_text(encoding="utf-8"))}
    site, urls = config["site_dir"], config["use_directory_urls"]
    for path in sorted(figures):
        files.append(File(path, src_dir=str(root), dest_dir=site, use_directory_urls=urls))
    return files
