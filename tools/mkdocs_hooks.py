"""MkDocs hook: Sphinx roles in docstrings (``:class:`~hessrank.RunConfig```) shown as code.

The docstrings are written for both ``help()`` and the API reference; mkdocstrings renders
a role as its name followed by the code (``:class:RunConfig``). This hook drops the role
and the ``~`` prefix, which in Sphinx means "show the last component only".
"""

import re

_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj):<code>(~?)([^<]*)</code>")


def _shown(match: re.Match) -> str:
    target = match.group(2)
    return f"<code>{target.rsplit('.', 1)[-1] if match.group(1) else target}</code>"


def on_page_content(html: str, **_) -> str:
    """Replace every rendered Sphinx role by the code it names."""
    return _ROLE.sub(_shown, html)
