"""Render report blocks to Markdown and self-contained HTML.

A report is a list of blocks, rendered alike by both: ``("h1"|"h2"|"h3"|"p"|"failed", text)``,
``("table", header, cells)``, ``("list", items)``, ``("img", name, base64 png)`` (HTML only).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

__all__ = ["write_blocks"]


def _md_rows(header: list[str], cells: list[list[str]]) -> list[str]:
    """A Markdown table: header, separator and one line per row."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in cells),
    ]


def _html_rows(header: list[str], cells: list[list[str]]) -> list[str]:
    """The rows of an HTML table (the caller writes ``<table>`` around them)."""
    return [
        "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>",
        *("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells),
    ]


def _markdown(blocks: list[tuple]) -> str:
    lines: list[str] = []
    for kind, *content in blocks:
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + content[0], ""]
        elif kind in ("p", "failed"):
            lines += [content[0], ""]
        elif kind == "table":
            lines += [*_md_rows(*content), ""]
        elif kind == "list":
            lines += [*(f"- {item}" for item in content[0]), ""]
    return "\n".join(lines)


_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em;line-height:1.4}"
    "table{border-collapse:collapse;display:block;overflow-x:auto;max-width:100%;margin:0.5em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child,td:nth-child(2){text-align:left}"
    "td:not(:nth-child(2)){white-space:nowrap}img{max-width:100%}.failed{color:#a00}.note{color:#444;font-size:0.92em}"
)


def _html(blocks: list[tuple]) -> str:
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>ctrlgym report</title><style>{_STYLE}</style></head><body>"
    ]
    for kind, *content in blocks:
        if kind in ("h1", "h2", "h3"):
            parts.append(f"<{kind}>{html.escape(content[0])}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{html.escape(content[0])}</p>")
        elif kind == "failed":
            parts.append(f"<p class='failed'>{html.escape(content[0])}</p>")
        elif kind == "table":
            parts += ["<table>", *_html_rows(*content), "</table>"]
        elif kind == "list":
            parts.append(
                "<ul class='note'>" + "".join(f"<li>{html.escape(item)}</li>" for item in content[0]) + "</ul>"
            )
        elif kind == "img":
            parts.append(f"<p><img alt='{content[0]}' src='data:image/png;base64,{content[1]}'></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_blocks(blocks: list[tuple], output: str | Path, data: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Render report blocks to ``OUTPUT.html`` (self-contained) and ``OUTPUT.md``, and write ``OUTPUT.json``
    with ``data`` (the report's numbers, for tools and generated pages) and the blocks' text and tables;
    return the HTML and Markdown paths."""
    output = Path(output)
    base = output.with_suffix("") if output.suffix in (".html", ".md", ".json") else output
    base.parent.mkdir(parents=True, exist_ok=True)
    html_path, markdown_path = base.with_suffix(".html"), base.with_suffix(".md")
    markdown_path.write_text(_markdown(blocks))
    html_path.write_text(_html(blocks))
    text_blocks = [list(block) for block in blocks if block[0] != "img"]
    payload = {"data": data or {}, "blocks": text_blocks}
    base.with_suffix(".json").write_text(json.dumps(payload, indent=1, default=_plain))
    return html_path, markdown_path


def _plain(value: Any) -> Any:
    """JSON for numpy scalars and arrays (the rest is plain already)."""
    return value.tolist() if hasattr(value, "tolist") else str(value)
