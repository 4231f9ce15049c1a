"""The report's HTML: one file, the data as JSON in ``<script type="application/json"
id="fastdl-data">``, the page's CSS and JavaScript (``report.css``, ``report.js`` shipped next to
this module) inline. Nothing is loaded from anywhere when the page opens."""
from __future__ import annotations

import html
import json
import math
from importlib import resources
from typing import Any

import fastdl


def _finite(v: Any) -> Any:
    """The data with NaN and infinities as None (JSON has no such numbers)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def data_json(data: dict[str, Any]) -> str:
    """The data as JSON that is safe inside a script element (no ``</`` in it)."""
    text = json.dumps(_finite(data), allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def render(data: dict[str, Any]) -> str:
    """The whole page for ``data`` (what ``report_data`` returns)."""
    title = html.escape(str(data.get("title") or "fastdl explain"))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="fastdl {html.escape(fastdl.__version__)} explain">
<title>{title}</title>
<style>
{_asset("report.css")}
</style>
</head>
<body>
<header><h1 id="title">{title}</h1><div class="meta" id="meta"></div></header>
<nav><a href="#graph">graph</a><a href="#layers">layers</a><a href="#gradcheck">gradient check</a><a href="#training">training</a><a href="#init">weight scale</a></nav>
<noscript><p>This page draws its figures with JavaScript; the numbers are in the fastdl-data script element.</p></noscript>
<div id="main"></div>
<script type="application/json" id="fastdl-data">{data_json(data)}</script>
<script>
{_asset("report.js")}
</script>
</body>
</html>
"""
