"""Markdown (CommonMark plus tables, via markdown-it-py): the rendered plain text, without markup, so an evidence
quote matches what a reader sees. Headings delimit sections; the title is the front matter's `title:`, else the first
level-1 heading, else the first heading. The source map anchors every text run at its place in the file. Each
heading's anchor is its slug as GitHub and most renderers write it (`heading_slug`).
"""
from __future__ import annotations

import html
import re

import yaml
from markdown_it import MarkdownIt

from retrieval_lab.data.formats import Extracted, TextBuilder, decode_text

# text_join would merge escapes and entities into the text around them, and the merged run is not in the source
_PARSER = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).disable("text_join")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?\r?\n)(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_TAG = re.compile(r"<!--.*?-->|<[^>]*>", re.DOTALL)
_SPACES = re.compile(r"\s+")
_INLINE_TEXT = {"text", "text_special", "code_inline"}
_LINE_SEPARATED = {"list_item_open", "tr_open", "dt_open", "dd_open"}
_BLOCK_SEPARATED = {"paragraph_open", "bullet_list_open", "ordered_list_open", "blockquote_open", "table_open",
                    "hr", "bullet_list_close", "ordered_list_close", "blockquote_close", "table_close"}


def read(raw: bytes) -> Extracted:
    source, encoding, note = decode_text(raw)
    front_title, body = _split_front_matter(source)
    line_starts = [0] + [m.end() for m in re.finditer("\n", body)]
    builder = TextBuilder()
    heading_start = None
    slugs: dict[str, int] = {}
    level_one = None
    cell = 0
    for token in _PARSER.parse(body):
        kind = token.type
        if kind == "heading_open":
            builder.separate("\n\n")
            heading_start = builder.start_heading()
        elif kind == "heading_close":
            heading = builder.text_since(heading_start).strip()
            explicit = _EXPLICIT_ID.search(heading)  # `## Title {#id}` (Pandoc, MkDocs): the id is the anchor
            if explicit:
                heading = heading[:explicit.start()].rstrip()
            builder.add_heading(heading_start, heading, int(token.tag[1]))
            if heading and heading_start < len(builder):
                builder.anchors.append([heading_start, explicit.group(1) if explicit else heading_slug(heading, slugs)])
            if token.tag == "h1" and level_one is None:
                level_one = heading
            heading_start = None
            builder.separate("\n\n")
        elif kind == "inline":
            _add_inline(builder, token, body, line_starts)
        elif kind in ("fence", "code_block"):
            builder.separate("\n\n")
            first_line = token.map[0] + (1 if kind == "fence" else 0)  # a fence's content starts after ```
            for i, line in enumerate(token.content.rstrip("\n").split("\n")):
                # line by line: the parser drops CRs and indentation, so each line is found in its own source line
                start, end = _offset(line_starts, first_line + i), _offset(line_starts, first_line + i + 1)
                found = body.find(line, start, end) if line else -1
                if i:
                    builder.add("\n")
                builder.add(line, found if found >= 0 else start)
            builder.separate("\n\n")
        elif kind == "html_block":
            text = _SPACES.sub(" ", html.unescape(_TAG.sub(" ", token.content))).strip()
            if text:
                builder.separate("\n\n")
                builder.add(text)
                builder.separate("\n\n")
        elif kind in _LINE_SEPARATED:
            builder.separate("\n")
            cell = 0
        elif kind in ("th_open", "td_open"):
            if cell:
                builder.add(" | ")
            cell += 1
        elif kind in _BLOCK_SEPARATED or (kind == "paragraph_close" and not token.hidden):
            builder.separate("\n" if token.hidden else "\n\n")
    first_heading = builder.headings[0][1] if builder.headings else None
    return Extracted(text=builder.text(), title=front_title or level_one or first_heading,
                     source_map=builder.source_map, sections=builder.sections(),
                     details={"encoding": encoding, "line_starts": line_starts}, note=note,
                     anchors=builder.anchors)


_EXPLICIT_ID = re.compile(r"\s*\{#([\w:.-]+)\}$")


def heading_slug(heading: str, seen: dict[str, int]) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces as hyphens; a repeated slug gets -1, -2..."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return f"{slug}-{count}" if count else slug


def _split_front_matter(source: str) -> tuple[str | None, str]:
    """(title from a leading YAML block, the source with that block blanked): blanking keeps every line, and so
    every offset, where it is in the file."""
    match = _FRONT_MATTER.match(source)
    if not match:
        return None, source
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None, source  # not front matter after all: a rule and a paragraph
    title = meta.get("title") if isinstance(meta, dict) else None
    blanked = re.sub(r"[^\n]", " ", match.group(0))
    return (str(title).strip() or None) if title is not None else None, blanked + source[match.end():]


def _offset(line_starts: list[int], line: int) -> int:
    return line_starts[min(line, len(line_starts) - 1)]


def _add_inline(builder: TextBuilder, token, body: str, line_starts: list[int]) -> None:
    """Append an inline run's text; each piece is looked up in its lines of the source, from where the previous
    piece ended, to anchor it (a piece not found verbatim, such as a decoded entity, continues the previous anchor)."""
    cursor = _offset(line_starts, token.map[0]) if token.map else None
    limit = _offset(line_starts, token.map[1]) if token.map else None
    for child in token.children or []:
        if child.type in _INLINE_TEXT or child.type == "image":
            piece = child.content
        elif child.type in ("softbreak", "hardbreak"):
            piece = "\n"
        else:
            continue
        if not piece:
            continue
        found = None
        if cursor is not None and child.type != "image":
            at = body.find(piece, cursor, limit)
            if at >= 0:
                found, cursor = at, at + len(piece)
        builder.add(piece, found)
