"""Markdown and self-contained HTML from one list of sections (no template engine).

A section holds blocks: paragraphs, notes (banners), tables and figures. Markdown links the PNGs beside
it; HTML embeds them as base64 data URIs, so the page needs no network and no other file.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class Paragraph:
    text: str


@dataclass
class Note:
    """A banner: something the reader must not miss (missing inputs, speed-only numbers)."""

    text: str


@dataclass
class Table:
    frame: pd.DataFrame
    caption: str
    csv: str | None = None  # the table's file under the report folder, for the reader
    max_rows: int = 40


@dataclass
class Figure:
    path: str  # relative to the report folder
    caption: str


@dataclass
class Section:
    title: str
    anchor: str
    blocks: list = field(default_factory=list)

    def add(self, *blocks) -> Section:
        self.blocks.extend(blocks)
        return self


def _cell(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.4g}"
    return str(value)


def _shown(table: Table) -> tuple[pd.DataFrame, str]:
    frame = table.frame
    if len(frame) <= table.max_rows:
        return frame, ""
    where = f" (all rows in `{table.csv}`)" if table.csv else ""
    return frame.head(table.max_rows), f"First {table.max_rows} of {len(frame)} rows{where}."


def to_markdown(title: str, sections: list[Section], *, banner: str | None = None) -> str:
    """The report as Markdown; figures are linked by their relative paths. ``banner`` (a --quick report's
    warning) stands above the title."""
    lines = [f"> **{banner}**", ""] if banner else []
    lines += [f"# {title}", "", "Contents: " + " | ".join(f"[{s.title}](#{s.anchor})" for s in sections), ""]
    for section in sections:
        lines += [f'<a id="{section.anchor}"></a>', f"## {section.title}", ""]
        for block in section.blocks:
            lines += _markdown_block(block) + [""]
    return "\n".join(lines)


def _markdown_block(block) -> list[str]:
    if isinstance(block, Paragraph):
        return [block.text]
    if isinstance(block, Note):
        return [f"> **Note.** {block.text}"]
    if isinstance(block, Figure):
        return [f"![{block.caption}]({block.path})", "", f"*{block.caption}*"]
    if isinstance(block, Table):
        frame, more = _shown(block)
        escape = lambda text: _cell(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731
        lines = [
            f"**{block.caption}**",
            "",
            "| " + " | ".join(escape(c) for c in frame.columns) + " |",
            "|" + "---|" * len(frame.columns),
        ]
        lines += ["| " + " | ".join(escape(v) for v in row) + " |" for row in frame.itertuples(index=False)]
        if more:
            lines += ["", more]
        elif block.csv:
            lines += ["", f"Table: `{block.csv}`."]
        return lines
    raise TypeError(f"unknown report block {type(block).__name__}")


STYLE = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:0 auto 2em;padding:0 1em;color:#222;
overflow-wrap:anywhere}
.scroll{overflow-x:auto;max-width:100%;margin:0.5em 0 1.5em}
table{border-collapse:collapse;font-size:0.85em}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top;max-width:40em}
.banner{position:sticky;top:0;z-index:1;background:#b00020;color:#fff;padding:0.4em 1em;margin:0 -1em;
font-size:0.9em}
#summary{border:2px solid #444;padding:0 1em 0.5em;margin:1em 0}
th{background:#f0f0f0}
.note{background:#fff4d6;border-left:4px solid #e0a000;padding:0.5em 1em;margin:1em 0}
figure{margin:1em 0 2em}
figure img{max-width:100%;height:auto}
figcaption{font-style:italic;font-size:0.9em}
td.agrees{background:#e2f5e2} td.disagrees{background:#fbe0e0} td.partly{background:#fff4d6}
"""


def to_html(title: str, sections: list[Section], root: Path, *, banner: str | None = None) -> str:
    """The report as one HTML page; figures under ``root`` are embedded as base64 PNGs. ``banner`` (a
    --quick report's warning) stays at the top of the window while the page scrolls. Tables sit in a
    horizontally scrolling box, so that a wide one never widens the page."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        *([_banner_html(banner)] if banner else []),
        f"<h1>{html.escape(title)}</h1>",
        "<nav><ol>",
    ]
    parts += [f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in sections]
    parts.append("</ol></nav>")
    for section in sections:
        parts.append(f'<section id="{section.anchor}"><h2>{html.escape(section.title)}</h2>')
        parts += [_html_block(block, Path(root)) for block in section.blocks]
        parts.append("</section>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts)


def _banner_html(banner: str) -> str:
    return f'<div class="banner" role="alert"><strong>{html.escape(banner)}</strong></div>'


def _html_block(block, root: Path) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{html.escape(block.text)}</p>"
    if isinstance(block, Note):
        return f'<div class="note"><strong>Note.</strong> {html.escape(block.text)}</div>'
    if isinstance(block, Figure):
        data = base64.b64encode((root / block.path).read_bytes()).decode("ascii")
        caption = html.escape(block.caption)
        return (
            f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    if isinstance(block, Table):
        frame, more = _shown(block)
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
        body = []
        for row in frame.itertuples(index=False):
            cells = []
            for value in row:
                text = _cell(value)
                css = {
                    "agrees": ' class="agrees"',
                    "disagrees": ' class="disagrees"',
                    "partly agrees": ' class="partly"',
                }.get(text, "")
                cells.append(f"<td{css}>{html.escape(text)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        footer = more or (f"Table: {block.csv}." if block.csv else "")
        footer_html = f"<p><small>{html.escape(footer.replace('`', ''))}</small></p>" if footer else ""
        caption = f"<caption>{html.escape(block.caption)}</caption>"
        rows = "".join(body)
        return (f'<div class="scroll"><table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody>'
                f"</table></div>{footer_html}")
    raise TypeError(f"unknown report block {type(block).__name__}")
