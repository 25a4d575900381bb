"""One self-contained HTML page (inline CSS, images as data URIs: opens with no network) and the same
sections as Markdown."""
from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .6em 0; font-size: .88em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption, p.caption { color: #555; font-size: .9em; }
nav ul { columns: 2; }
p.warning { background: #fff3cd; border: 2px solid #c0392b; color: #7b1d12; padding: .6em 1em; font-weight: bold; }
"""
# Marks the page once every image has decoded (headless-browser check, and visible to a reader as a title).
CHECK = """
window.addEventListener('load', () => {
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length;
  document.body.dataset.images = document.images.length;
  document.body.dataset.brokenImages = broken;
});
"""


@dataclass
class Item:
    """A table (DataFrame) or a figure (PNG path) with its caption."""
    caption: str
    table: pd.DataFrame | None = None
    figure: str | Path | None = None


@dataclass
class Section:
    title: str
    text: str
    items: list[Item]

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")


def _data_uri(png: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode("ascii")


def render_html(title: str, intro: str, sections: list[Section], warning: str | None = None) -> str:
    """The page; `warning` (e.g. random-weight models) is shown above everything else."""
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
           f"<style>{STYLE}</style><script>{CHECK}</script></head><body>", f"<h1>{html.escape(title)}</h1>",
           f"<p class='warning' role='alert'>{html.escape(warning)}</p>" if warning else "",
           f"<p>{html.escape(intro)}</p><nav><ul>"]
    out += [f"<li><a href='#{s.anchor}'>{html.escape(s.title)}</a></li>" for s in sections]
    out.append("</ul></nav>")
    for section in sections:
        out.append(f"<section id='{section.anchor}'><h2>{html.escape(section.title)}</h2>"
                   f"<p>{html.escape(section.text)}</p>")
        for item in section.items:
            if item.table is not None:
                out.append(f"<p class='caption'>{html.escape(item.caption)}</p>"
                           + item.table.to_html(index=False, escape=True, na_rep="–", border=0))
            else:
                out.append(f"<figure><img src='{_data_uri(item.figure)}' alt='{html.escape(item.caption)}'>"
                           f"<figcaption>{html.escape(item.caption)}</figcaption></figure>")
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)


def render_markdown(title: str, intro: str, sections: list[Section], relative_to: Path,
                    warning: str | None = None) -> str:
    out = [f"# {title}", "", *([f"> **{warning}**", ""] if warning else []), intro, ""]
    for section in sections:
        out += [f"## {section.title}", "", section.text, ""]
        for item in section.items:
            if item.table is not None:
                out += [f"*{item.caption}*", "", item.table.to_markdown(index=False), ""]
            else:
                rel = Path(os.path.relpath(Path(item.figure).resolve(), relative_to.resolve())).as_posix()
                out += [f"![{item.caption}]({rel})", "", f"*{item.caption}*", ""]
    return "\n".join(out)
