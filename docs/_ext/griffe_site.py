"""Griffe extension for this site's API pages (mkdocs.yml loads it; it changes nothing in fastdl).

- Interactive examples: fastdl's docstrings are plain prose, and ``>>> code`` lines would be read
  by Markdown as nested block quotes. Each run of ``>>>`` / ``...`` lines, with the output lines
  that follow up to a blank line, is put in a ```pycon block.
- Cross-reference roles of reST (``:func:`im2col```, ``:mod:`fastdl.callbacks```) are shown as
  code, the name alone (its last part after ``~``, as Sphinx shows it), not as raw markup.
- Special methods (``__repr__``, ``__eq__``, ...) are left off the pages; ``__init__`` is merged
  into its class's signature by the handler (``merge_init_into_class``).
- A class's attributes without a docstring of their own are left off as entries: their
  documentation is the class docstring's Attributes section (an entry would be an empty box
  repeating the name). Attributes with a docstring (``x = ...`` followed by a string) keep theirs.
"""
import re

import griffe

PROMPT = re.compile(r"^(\s*)>>>( |$)")
ROLE = re.compile(r":(?:py:)?(?:func|mod|class|meth|attr|data|exc|obj|const):`(~?)([^`]+)`")


def role_as_code(m):
    """``:func:`~a.b``` -> ```b```, ``:mod:`a.b``` -> ```a.b```."""
    name = m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2)
    return f"`{name}`"


def fence(text):
    """``text`` with each interactive example fenced as ```pycon."""
    lines = text.split("\n")
    out, i = [], 0
    while i < len(lines):
        m = PROMPT.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent = m.group(1)
        out.append(f"{indent}```pycon")
        while i < len(lines) and lines[i].strip():
            out.append(lines[i])
            i += 1
        out.append(f"{indent}```")
    return "\n".join(out)


class SiteDocstrings(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence(obj.docstring.value)
        if obj.docstring is not None and ":`" in obj.docstring.value:
            obj.docstring.value = ROLE.sub(role_as_code, obj.docstring.value)

    def on_class_members(self, *, cls, **kwargs):
        for name in [n for n in cls.members if n.startswith("__") and n.endswith("__")
                     and n != "__init__"]:
            del cls.members[name]
        for name in [n for n, m in cls.members.items()
                     if not m.is_alias and m.is_attribute and m.docstring is None]:
            del cls.members[name]
