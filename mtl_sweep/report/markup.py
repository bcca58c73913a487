"""Each text format's markup: how it escapes text, marks the best value and a significant
difference, and so how a `Cell` of the document becomes text in it."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

from mtl_sweep.report.model.base import BETTER, WORSE
from mtl_sweep.report.model.document import Cell


@dataclass(frozen=True)
class Markup:
    """How one format escapes text, marks the best value and a significant difference."""

    escape: Callable[[str], str]
    bold: Callable[[str], str]
    better: str = f" {BETTER}"  # appended to a significantly better multi-task value
    worse: str = f" {WORSE}"

    def sign(self, direction: int) -> str:
        """The marker for a test's direction (+1 better, -1 worse, 0 none)."""
        return {1: self.better, -1: self.worse}.get(direction, "")

    def cell(self, cell: Cell) -> str:
        """A cell's text escaped, in bold where it is the best value, then its marker."""
        text = self.escape(cell.text)
        return (self.bold(text) if cell.bold else text) + self.sign(cell.sign)


MARKDOWN = Markup(lambda s: s.replace("|", r"\|"), lambda s: f"**{s}**")
HTML = Markup(
    html.escape,
    lambda s: f"<b>{s}</b>",
    f' <span class="up">{BETTER}</span>',  # coloured by the page's style
    f' <span class="down">{WORSE}</span>',
)
_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "ε": r"$\varepsilon$",
    "α": r"$\alpha$",
    "ρ": r"$\rho$",
    "σ": r"$\sigma$",
    "μ": r"$\mu$",
    "Σ": r"$\Sigma$",
    "²": r"$^2$",
    "×": r"$\times$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "≈": r"$\approx$",
    "→": r"$\to$",
    "<": "$<$",  # text-mode < and > print as ¡ and ¿ in LaTeX's default font encoding
    ">": "$>$",
    "—": "---",
    "–": "--",
    "−": "$-$",
    BETTER: r"$^{\dagger}$",  # the significance markers become daggers
    WORSE: r"$^{\ddagger}$",
}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX_ESCAPES))
LATEX = Markup(
    lambda s: _LATEX_RE.sub(lambda m: _LATEX_ESCAPES[m.group()], s),
    lambda s: rf"\textbf{{{s}}}",
    _LATEX_ESCAPES[BETTER],  # set against the number, with no space
    _LATEX_ESCAPES[WORSE],
)


def slug(text: str) -> str:
    """A name for labels and anchors: lowercase words joined by `-`."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "report"
