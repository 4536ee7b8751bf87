"""HTML: the visible text of the page's content, without navigation and boilerplate.

Parsed with the standard library's tokenizer (`html.parser`, the default backend of BeautifulSoup), because it reports
the line and column of every token: the source map anchors each text run at its exact place in the file. Tree
builders (lxml, selectolax) give at most an element's line, and main-content extractors (trafilatura) give no
positions and are tuned for news articles rather than manuals.

What is dropped, by rule, so a reader can predict it:
- elements that are never content: script, style, noscript, template, svg, canvas, iframe, object, form, button,
  select, dialog; and the navigation elements nav and aside;
- header and footer (as elements or as a class) outside an article or main element: page headers and footers, such
  as the "Next / Previous / Up" panels of Texinfo manuals;
- elements with a navigation ARIA role, `hidden`, `aria-hidden="true"`, or a class naming navigation or page
  furniture (navbar, breadcrumb, sidebar, toc, headerlink, ...: BOILERPLATE_CLASSES);
- lists and tables of 3 or more links whose text is at least 70% link text, or whose other text is at most a short
  label (LINK_LIST_LABEL_MAX characters): tables of contents, menus, indexes, "Jump to: A B C" letter bars;
- footnote markers: a <sup> inside a link to a place in the page (`<a href="#FOOT15"><sup>15</sup></a>`), which
  would otherwise glue the number to the word before it ("state15"); and permalink signs: a pilcrow alone inside
  such a link, as Texinfo puts after definition terms ("FLIBS ¶");
- everything outside <main> (or role="main") when the page has one.
Whitespace collapses as a browser shows it, except inside <pre>. Title: <title>, else the first h1, else the first
heading; h1-h6 delimit sections, each with its heading path (h1 > h2 > h3). A heading inside a block (div, section,
article, blockquote) heads it only to the block's end: after a DocBook `<div class="note"><h3>Note</h3>...</div>`
the text belongs to the section the note interrupted again, not to "Note". Every `id` attribute (and `<a name>`)
of kept content is an anchor, so a place in the text can be linked to as `page.html#id`.
"""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from retrieval_lab.data.formats import Extracted, TextBuilder, anchor_at, decode_text, known_codec

NEVER_CONTENT = {"script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "form", "button",
                 "select", "dialog", "nav", "aside"}
PAGE_FRAME = {"header", "footer"}  # boilerplate unless inside an article or main element
NAVIGATION_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar", "toolbar"}
BOILERPLATE_CLASSES = {"nav", "navbar", "nav-panel", "navigation", "breadcrumb", "breadcrumbs", "sidebar",
                       "skip-link", "skiplink", "toc", "table-of-contents", "contents-heading",
                       "shortcontents-heading", "cookie-banner", "site-header", "site-footer",
                       # DocBook XSL's Prev / Up / Home / Next panels (PostgreSQL's manual, among many)
                       "navheader", "navfooter",
                       # the permalink signs (¶, #) that documentation generators put after each heading
                       "headerlink", "header-anchor", "hash-link", "anchor-link", "permalink", "copiable-anchor",
                       # footnote reference markers (Sphinx, Pandoc); Texinfo's are caught by <sup> in an in-page link
                       "footnote-ref", "footnote-reference"}
LINK_LIST_TAGS = {"ul", "ol", "dl", "table", "menu"}
LINK_LIST_MIN_LINKS = 3
LINK_LIST_MIN_SHARE = 0.7
LINK_LIST_LABEL_MAX = 16  # "Jump to:" before a bar of letter links: a label, not content
PERMALINK_SIGNS = {"¶", "§", "#"}
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track",
             "wbr"}
BLOCK_TAGS = {"p", "div", "section", "article", "main", "header", "footer", "pre", "blockquote", "table", "ul", "ol",
              "dl", "figure", "address", "details", "fieldset", "hr", "body", "center", "menu", "h1", "h2", "h3", "h4",
              "h5", "h6"}
LINE_TAGS = {"li", "tr", "dt", "dd", "br", "caption", "figcaption", "summary"}
HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
SCOPE_TAGS = {"div", "section", "article", "blockquote"}  # a heading inside one heads it only to its end
_RUN = re.compile(r"\S+(?:\s\S+)*")  # words separated by single whitespace characters: one linear map piece
_ANY_SPACE = re.compile(r"\s")
_ENTITY = re.compile(r"&(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;?)")
_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)
_HAS_MAIN = re.compile(r"<main[\s>]|\brole\s*=\s*[\"']?main[\"'\s>]", re.IGNORECASE)


def read(raw: bytes) -> Extracted:
    text, encoding, note = decode_text(raw, _declared_charset(raw))
    extractor = _Extractor(text)
    extractor.feed(text)
    extractor.close()
    builder = extractor.builder
    if extractor.skip_tag:
        unclosed = f"an unclosed <{extractor.skip_tag}> hides the rest of the file"
        note = f"{note}; {unclosed}" if note else unclosed
    first_heading = builder.headings[0][1] if builder.headings else None
    return Extracted(text=builder.text(), title=extractor.title or extractor.first_h1 or first_heading,
                     source_map=builder.source_map, sections=builder.sections(),
                     details={"encoding": encoding, "line_starts": extractor.line_starts}, note=note,
                     anchors=builder.anchors)


def _declared_charset(raw: bytes) -> str | None:
    match = _CHARSET.search(raw[:4096])
    codec = known_codec(match.group(1).decode("ascii")) if match else None
    # browsers read pages labelled Latin-1 or ASCII as Windows-1252, its superset
    return "cp1252" if codec in ("latin_1", "iso8859-1", "ascii") else codec


class _Extractor(HTMLParser):
    def __init__(self, source: str):
        super().__init__(convert_charrefs=False)  # entities arrive apart, at their own positions
        self.source = source
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self.builder = TextBuilder()
        self.title: str | None = None
        self.first_h1: str | None = None
        self.skip_tag: str | None = None  # the element being dropped, and how deep in same-named ones we are
        self.skip_depth = 0
        self.main_only = bool(_HAS_MAIN.search(source))
        self.main_tag: str | None = None
        self.main_depth = 0
        self.article_depth = 0
        self.pre_depth = 0
        self.pre_fresh = False
        self.links: list[str | None] = []  # the href of each open <a> element (None without one)
        self.containers: list[list] = []  # [tag, checkpoint, chars, link chars, links] of open lists and tables
        self.cell = 0
        self.heading: tuple[str, int] | None = None
        self.scopes: list[list] = []  # [tag, heading in force when it opened, holds a heading] of open blocks
        self.in_force: tuple[str, int, str | None] | None = None  # (heading, level, anchor) the text belongs to
        self._title_parts: list[str] | None = None

    # --- tags -----------------------------------------------------------------------------------------------------
    def handle_starttag(self, tag, attrs):
        if self.skip_tag:
            if tag == self.skip_tag and tag not in VOID_TAGS:
                self.skip_depth += 1
            return
        if tag == "title" and self.title is None:
            self._title_parts = []
            return
        if tag not in VOID_TAGS and (self._is_boilerplate(tag, dict(attrs)) or self._is_footnote_marker(tag)):
            self.skip_tag, self.skip_depth = tag, 1
            return
        if self.main_only:
            if self.main_tag is None:
                if tag in VOID_TAGS or not (tag == "main" or dict(attrs).get("role") == "main"):
                    return  # outside the main content
                self.main_tag, self.main_depth = tag, 1
                self.article_depth += 1
            elif tag == self.main_tag:
                self.main_depth += 1
        self._open(tag, attrs)

    def handle_endtag(self, tag):
        if self.skip_tag:
            if tag == self.skip_tag:
                self.skip_depth -= 1
                if self.skip_depth == 0:
                    self.skip_tag = None
            return
        if tag == "title" and self._title_parts is not None:
            self.title = " ".join("".join(self._title_parts).split()) or None
            self._title_parts = None
            return
        if self.main_only:
            if self.main_tag is None:
                return
            if tag == self.main_tag:
                self.main_depth -= 1
                if self.main_depth == 0:
                    self._close(tag)
                    self.main_tag = None
                    self.article_depth -= 1
                    return
        self._close(tag)

    def _is_boilerplate(self, tag: str, attrs: dict) -> bool:
        if tag in NEVER_CONTENT or "hidden" in attrs or attrs.get("aria-hidden") == "true":
            return True
        if (attrs.get("role") or "").lower() in NAVIGATION_ROLES:
            return True
        classes = set((attrs.get("class") or "").lower().split())
        frame = tag in PAGE_FRAME or bool(classes & PAGE_FRAME)
        return (frame and self.article_depth == 0) or bool(classes & BOILERPLATE_CLASSES)

    def _is_footnote_marker(self, tag: str) -> bool:
        return tag == "sup" and self._in_page_link()

    def _in_page_link(self) -> bool:
        return bool(self.links) and (self.links[-1] or "").startswith("#")

    def _open(self, tag: str, attrs) -> None:
        builder = self.builder
        if tag in SCOPE_TAGS:
            self.scopes.append([tag, self.in_force, False])
        if tag == "article":
            self.article_depth += 1
        if tag in LINK_LIST_TAGS:
            self.containers.append([tag, builder.checkpoint(), 0, 0, 0])
        if tag == "a":
            href = dict(attrs).get("href")
            self.links.append(href)
            if href is not None and self.containers:
                self.containers[-1][4] += 1
        if tag in HEADINGS:
            builder.separate("\n\n")
            self.heading = (tag, builder.start_heading())
        elif tag in BLOCK_TAGS:
            builder.separate("\n\n")
        elif tag in LINE_TAGS:
            builder.separate("\n")
        if tag == "tr":
            self.cell = 0
        elif tag in ("td", "th"):
            if self.cell:
                builder.separate(" ")
                builder.add("|")
                builder.separate(" ")
            self.cell += 1
        elif tag == "pre":
            self.pre_depth += 1
            self.pre_fresh = True
        found = dict(attrs)
        target = found.get("id") or (found.get("name") if tag == "a" else None)
        if target:  # after the separators above, so it sits where the element's text starts
            builder.add_anchor(target.strip())

    def _close(self, tag: str) -> None:
        builder = self.builder
        if tag == "article" and self.article_depth:
            self.article_depth -= 1
        elif tag == "a" and self.links:
            self.links.pop()
        elif tag == "pre" and self.pre_depth:
            self.pre_depth -= 1
        if tag in HEADINGS and self.heading and self.heading[0] == tag:
            start = self.heading[1]
            heading = " ".join(builder.text_since(start).split())
            recorded = len(builder.headings)
            builder.add_heading(start, heading, int(tag[1]))
            if len(builder.headings) > recorded:
                self.in_force = (heading, int(tag[1]), None)
                if self.scopes:
                    self.scopes[-1][2] = True
            if tag == "h1" and self.first_h1 is None and heading:
                self.first_h1 = heading
            self.heading = None
        if tag in LINK_LIST_TAGS:
            self._close_container(tag)
        if tag in SCOPE_TAGS:
            self._close_scope(tag)
        if tag in BLOCK_TAGS:
            builder.separate("\n\n")
        elif tag in LINE_TAGS:
            builder.separate("\n")

    def _close_scope(self, tag: str) -> None:
        """A block that held a heading closes: the heading in force before it opened is in force again."""
        for depth in range(len(self.scopes) - 1, -1, -1):
            if self.scopes[depth][0] == tag:
                break
        else:
            return
        _, before, held = self.scopes[depth]
        del self.scopes[depth:]
        if held and before is not None:
            heading, level, anchor = before
            if anchor is None:  # the section's own anchor, as sections() gives it
                start = max((s for s, h, lv in self.builder.headings if (h, lv) == (heading, level)), default=None)
                anchor = anchor_at(self.builder.anchors, start) if start is not None else None
                before = (heading, level, anchor)
            self.builder.resume(heading, level, anchor)
            self.in_force = before

    def _close_container(self, tag: str) -> None:
        """Drop a list or table that is mostly links (navigation); otherwise its counts join the enclosing one."""
        for depth in range(len(self.containers) - 1, -1, -1):
            if self.containers[depth][0] == tag:
                break
        else:
            return
        while len(self.containers) > depth:
            name, mark, chars, link_chars, links = self.containers.pop()
            if links >= LINK_LIST_MIN_LINKS and (link_chars >= LINK_LIST_MIN_SHARE * chars
                                                 or chars - link_chars <= LINK_LIST_LABEL_MAX):
                self.builder.rollback(mark)
            elif self.containers:
                parent = self.containers[-1]
                parent[2] += chars
                parent[3] += link_chars
                parent[4] += links

    # --- text -----------------------------------------------------------------------------------------------------
    def handle_data(self, data):
        self._text(data, None)

    def handle_entityref(self, name):
        self._entity()

    def handle_charref(self, name):
        self._entity()

    def _entity(self) -> None:
        offset = self._offset()
        match = _ENTITY.match(self.source, offset)
        self._text(html.unescape(match.group()) if match else "&", offset)

    def _offset(self) -> int:
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    def _text(self, data: str, offset: int | None) -> None:
        if self.skip_tag or not data:
            return
        if self._title_parts is not None:
            self._title_parts.append(data)
            return
        if self.main_only and self.main_tag is None:
            return
        if data.strip() in PERMALINK_SIGNS and self._in_page_link():
            return
        if offset is None:
            offset = self._offset()
        builder = self.builder
        if self.pre_depth:
            if self.pre_fresh and data.startswith(("\n", "\r")):  # the line break right after <pre> is not content
                skip = 2 if data.startswith("\r\n") else 1
                data, offset = data[skip:], offset + skip
            self.pre_fresh = False
            builder.add(data, offset)
            self._count(len(data) - data.count(" ") - data.count("\n"))
            return
        for match in _RUN.finditer(data):
            if match.start():
                builder.separate(" ")
            run = match.group()
            builder.add(_ANY_SPACE.sub(" ", run), offset + match.start())
            self._count(len(run))
        if data[-1].isspace():
            builder.separate(" ")

    def _count(self, chars: int) -> None:
        if self.containers:
            self.containers[-1][2] += chars
            if any(href is not None for href in self.links):
                self.containers[-1][3] += chars
