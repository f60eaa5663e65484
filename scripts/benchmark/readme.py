"""The root README's Benchmark section shows the latest run: the text between two markers is replaced."""

from __future__ import annotations

from pathlib import Path

START = "<!-- bench:start (make bench rewrites this block) -->"
END = "<!-- bench:end -->"


def replace_block(text: str, block: str) -> str | None:
    """``text`` with what lies between the markers replaced by ``block``; None when the markers are missing."""
    start = text.find(START)
    end = text.find(END, start + len(START)) if start >= 0 else -1
    if start < 0 or end < 0:
        return None
    return f"{text[: start + len(START)]}\n{block.strip()}\n{text[end:]}"


def update_readme(path: Path, block: str) -> bool:
    """Rewrite the block in ``path``; False when it has no markers (nothing is written then)."""
    text = path.read_text()
    updated = replace_block(text, block)
    if updated is None:
        return False
    if updated != text:
        path.write_text(updated)
    return True
