"""Pictures as SVG text (no drawing library): explain's cells, and a decoder plan's U.

The numbers come from the explain Report and the DecoderPlan; this module only lays them out.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from . import _core
from ._rules import full_length

__all__ = ["decoder_svg", "explain_svg"]

FONT = "font-family='DejaVu Sans Mono, Menlo, Consolas, monospace'"
CHAR = 6.7  # width of one character at 11px in the monospace fonts above
CELL = 16
LABEL = 150  # room for the row labels
MAX_COLUMNS = 64  # wider dims are drawn with their middle elided

COLORS = {
    "input": "#1f77b4",
    "zero": "#d9d9d9",
    "tap": "#ff7f0e",
    "gap": "#ffe0c2",
    "full": "#bdbdbd",
    "crop": "#d62728",
    "added": "#2ca02c",
    "output": "#1f77b4",
    "skip": "#2ca02c",
    "text": "#222222",
}


class _Svg:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.width = 0.0
        self.height = 0.0

    def _grow(self, x: float, y: float) -> None:
        self.width, self.height = max(self.width, x), max(self.height, y)

    def rect(self, x: float, y: float, w: float, h: float, fill: str, **kw: Any) -> None:
        extra = "".join(f" {k.replace('_', '-')}='{v}'" for k, v in kw.items())
        self.parts.append(
            f"<rect x='{x:.1f}' y='{y:.1f}' width='{w:.1f}' height='{h:.1f}' fill='{fill}'{extra}/>"
        )
        self._grow(x + w, y + h)

    def text(self, x: float, y: float, s: str, size: int = 11, **kw: Any) -> None:
        color = kw.pop("fill", COLORS["text"])
        extra = "".join(f" {k.replace('_', '-')}='{v}'" for k, v in kw.items())
        self.parts.append(
            f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' {FONT} "
            f"fill='{color}'{extra}>{escape(s)}</text>"
        )
        anchor = kw.get("text_anchor", "start")
        right = x + (len(s) * CHAR * size / 11 if anchor == "start" else 0)
        self._grow(right, y + 4)

    def line(self, x1: float, y1: float, x2: float, y2: float, color: str, **kw: Any) -> None:
        extra = "".join(f" {k.replace('_', '-')}='{v}'" for k, v in kw.items())
        self.parts.append(
            f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' stroke='{color}'"
            f" stroke-width='1.5'{extra}/>"
        )
        self._grow(max(x1, x2), max(y1, y2))

    def render(self, margin: float = 12) -> str:
        w, h = self.width + margin, self.height + margin
        head = (
            f"<svg xmlns='http://www.w3.org/2000/svg' width='{w:.0f}' height='{h:.0f}' "
            f"viewBox='0 0 {w:.0f} {h:.0f}'>"
            "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' "
            "markerHeight='7' orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' "
            "fill='#555'/></marker></defs>"
            f"<rect width='100%' height='100%' fill='white'/>"
        )
        return head + "".join(self.parts) + "</svg>\n"


# ---- explain ---------------------------------------------------------------------------------


def _columns(start: int, end: int) -> list[int | None]:
    if end - start <= MAX_COLUMNS:
        return list(range(start, end))
    half = (MAX_COLUMNS - 1) // 2
    return [*range(start, start + half), None, *range(end - (MAX_COLUMNS - 1 - half), end)]


def _dim_panel(svg: _Svg, y: float, names: str, d: Any) -> float:
    """One spatial dim: input cells, kernel footprints, full result, crops, added cells and the
    output, one column per cell of the full result. Returns the next free y."""
    full = full_length(d.i, d.k, d.s, d.d)
    span = _core.effective_kernel(d.k, d.d)
    last = full - span
    start, end = min(0, d.lo), max(full, d.lo + d.out, full - d.hi + d.op)
    cols = _columns(start, end)
    x0 = LABEL

    svg.text(8, y + 12, f"{names}: {d.i} in -> {d.out} out", 12, font_weight="bold")
    y += 22

    def row(label: str, fill_of: Any, mark: Any = None) -> None:
        nonlocal y
        svg.text(8, y + 12, label)
        for c, p in enumerate(cols):
            x = x0 + c * CELL
            if p is None:
                svg.text(x + 2, y + 12, "…")
                continue
            fill = fill_of(p)
            if fill:
                svg.rect(x + 1, y + 1, CELL - 2, CELL - 2, fill, rx=2)
            if mark is not None and mark(p):
                svg.text(x + CELL / 2, y + 12, mark(p), 10, text_anchor="middle", fill="white")
        y += CELL + 2

    svg.text(8, y + 12, "position")
    for c, p in enumerate(cols):
        if p is not None and (p % 5 == 0 or c == 0):
            svg.text(x0 + c * CELL + CELL / 2, y + 12, str(p), 9, text_anchor="middle")
    y += CELL + 2
    row(
        f"input (stride {d.s})",
        lambda p: (
            COLORS["input"]
            if 0 <= p <= last and p % d.s == 0
            else COLORS["zero"]
            if 0 <= p <= last
            else None
        ),
    )
    shown = list(range(d.i)) if d.i <= 5 else [0, 1, d.i - 1]
    for j in shown:
        if d.i > 5 and j == d.i - 1:
            svg.text(x0, y + 10, "…", 11)
            y += CELL - 4

        def tap(p: int, base: int = j * d.s) -> str | None:
            off = p - base
            if not 0 <= off < span:
                return None
            return COLORS["tap"] if off % d.d == 0 else COLORS["gap"]

        row(f"kernel of x[{j}]", tap)
    row(f"full result {full}", lambda p: COLORS["full"] if 0 <= p < full else None)
    if d.lo or d.hi:
        row(
            f"crop {d.lo} + {d.hi}",
            lambda p: COLORS["crop"] if 0 <= p < d.lo or full - d.hi <= p < full else None,
            lambda p: "x" if 0 <= p < d.lo or full - d.hi <= p < full else "",
        )
    if d.op:
        a = full - d.hi
        row(
            f"output_padding {d.op}",
            lambda p: COLORS["added"] if a <= p < a + d.op else None,
            lambda p: "+" if a <= p < a + d.op else "",
        )
    row(
        f"output {d.out}",
        lambda p: (
            (COLORS["output"] if 0 <= p < full else COLORS["added"])
            if d.lo <= p < d.lo + d.out
            else None
        ),
    )
    return y + 10


def _legend(svg: _Svg, y: float, items: list[tuple[str, str]]) -> float:
    x = 8.0
    for color, label in items:
        svg.rect(x, y, 12, 12, color, rx=2)
        svg.text(x + 16, y + 10, label, 10)
        x += 16 + len(label) * CHAR * 10 / 11 + 14
    return y + 20


def explain_svg(rep: Any) -> str:
    """explain's picture of every spatial dim, as SVG text."""
    from ._dialects import DIALECTS
    from ._explain import _fmt, _groups

    svg = _Svg()
    svg.text(8, 16, f"{DIALECTS[rep.convention].framework}: {rep.layer}", 12, font_weight="bold")
    out = tuple(d.out for d in rep.dims)
    svg.text(8, 32, f"spatial input {_fmt(tuple(d.i for d in rep.dims))}  ->  output {_fmt(out)}")
    y = 46.0
    for names, d in _groups(rep.dims):
        y = _dim_panel(svg, y, names, d)
    _legend(
        svg,
        y,
        [
            (COLORS["input"], "input cell"),
            (COLORS["zero"], "zero between inputs"),
            (COLORS["tap"], "kernel tap"),
            (COLORS["full"], "full result"),
            (COLORS["crop"], "cropped"),
            (COLORS["added"], "added"),
        ],
    )
    return svg.render()


# ---- decoder ---------------------------------------------------------------------------------


def _short(code: str) -> str:
    """A layer's code without the channel placeholders and the trailing comment."""
    code = code.split("  #")[0]
    for s in ("in_channels, out_channels, ", "out_channels, ", "(x, ", "x, filters, "):
        code = code.replace(s, "(" if s.startswith("(") else "")
    return code


def decoder_svg(plan: Any) -> str:
    """The plan as a U: encoder levels down the left, up-layers up the right, each skip an
    arrow across at its size."""
    from ._decoder import layer_text

    stepped = sorted(plan.skips)
    m = len(stepped)
    bounds = [0, *stepped, len(plan.encoder)]
    x = "x".join
    levels = []
    for j in range(m + 1):
        layers = [layer_text(e) for e in plan.encoder[bounds[j] : bounds[j + 1]]]
        size = plan.sizes[stepped[j]] if j < m else plan.sizes[-1]
        levels.append((layers, size))
    step_at = {m - 1 - k: s for k, s in enumerate(plan.steps)}  # level -> its step

    line_h = 14
    box_h = [max(2, len(layers) + 1) * line_h + 10 for layers, _ in levels]
    left_w = max(len(t) for layers, _ in levels for t in [*layers, "input 0000x0000"]) * CHAR + 20
    right_w = max(len(_short(s.code())) for s in plan.steps) * CHAR + 20
    gap, indent = 170.0, 28.0
    svg = _Svg()
    svg.text(
        8,
        16,
        f"{plan.convention} decoder for a {x(map(str, plan.input_size))} input: encoder "
        "(left, down), up-layers (right, up), skips across",
        12,
        font_weight="bold",
    )
    y, tops = 34.0, []
    for j, (layers, size) in enumerate(levels):
        tops.append(y)
        lx = 8 + j * indent
        bottom = j == m
        svg.rect(lx, y, left_w, box_h[j], "#eef4fb", stroke="#1f77b4", rx=4)
        title = f"{'bottom' if bottom else 'skip' if j else 'input'} {x(map(str, size))}"
        if j == 0:
            title = f"input {x(map(str, plan.input_size))}; skip {x(map(str, size))}"
        svg.text(lx + 8, y + 15, title, 11, font_weight="bold")
        for t, text in enumerate(layers):
            svg.text(lx + 8, y + 15 + (t + 1) * line_h, text, 10)
        if not bottom:
            rx = 8 + (m - 1) * indent + left_w + gap - j * indent
            step = step_at[j]
            padded = any(op for _, _, op in step.crop)  # output_padding (cells added)
            svg.rect(
                rx,
                y,
                right_w,
                box_h[j],
                "#fff4e5" if padded else "#eef8ee",
                stroke=COLORS["tap"] if padded else COLORS["skip"],
                rx=4,
            )
            svg.text(
                rx + 8,
                y + 15,
                f"step {m - j}: {x(map(str, step.input_size))} -> {x(map(str, step.output_size))}",
                11,
                font_weight="bold",
            )
            svg.text(rx + 8, y + 15 + line_h, _short(step.code()), 10)
            mid = y + box_h[j] / 2
            svg.line(lx + left_w, mid, rx, mid, COLORS["skip"], marker_end="url(#arrow)")
            svg.text(
                (lx + left_w + rx) / 2,
                mid - 5,
                f"skip {x(map(str, size))}",
                10,
                text_anchor="middle",
            )
        y += box_h[j] + 36
    for j in range(m):  # the downsampling arrows, and the up arrows beside them
        lx = 8 + j * indent + 14
        svg.line(lx, tops[j] + box_h[j], lx, tops[j + 1], "#555", marker_end="url(#arrow)")
        rx = 8 + (m - 1) * indent + left_w + gap - j * indent + right_w / 2
        top = tops[j + 1] + (box_h[j + 1] / 2 if j + 1 == m else 0)
        src = 8 + (m - 1) * indent + left_w + gap - (j + 1) * indent + right_w / 2
        if j + 1 == m:  # from the bottom box to the deepest up-layer
            bx = 8 + m * indent + left_w
            svg.line(bx, top, rx, top, "#555")
            svg.line(rx, top, rx, tops[j] + box_h[j], "#555", marker_end="url(#arrow)")
        else:
            svg.line(src, top, rx, tops[j] + box_h[j], "#555", marker_end="url(#arrow)")
    near = plan.nearest_inputs
    y += 4
    if plan.clean:
        svg.text(8, y, "this input size needs no output_padding anywhere")
    else:
        lo = [a for a, _ in near]
        hi = [b for _, b in near]
        words = " or ".join(
            f"{x(map(str, v))} ({w})" for v, w in ((lo, "below"), (hi, "above")) if None not in v
        )
        svg.text(8, y, f"nearest input sizes that need no output_padding: {words or 'none'}")
    _legend(
        svg,
        y + 10,
        [
            (COLORS["input"], "encoder level"),
            (COLORS["skip"], "up-layer, skip size exactly"),
            (COLORS["tap"], "up-layer that adds cells (output_padding)"),
        ],
    )
    return svg.render()
