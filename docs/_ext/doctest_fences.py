"""Griffe extension for this site: fence the docstrings' interactive examples.

fastdl's docstrings are plain prose; an example written as ``>>> code`` lines would be read by
Markdown as nested block quotes. This wraps each run of ``>>>`` / ``...`` lines, and the output
lines that follow them up to a blank line, in a ```pycon block. Nothing else is changed.
"""
import re

import griffe

PROMPT = re.compile(r"^(\s*)(>>>|\.\.\.)( |$)")


def fence(text):
    lines = text.split("\n")
    out, i = [], 0
    while i < len(lines):
        m = PROMPT.match(lines[i])
        if not m or lines[i].lstrip().startswith("..."):
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


class DoctestFences(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence(obj.docstring.value)
