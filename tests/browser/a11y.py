"""Checks the browser tests run on a page as it is shown: does it fit the window, does axe-core
find serious accessibility problems, do its ARIA references point at elements that exist."""

from __future__ import annotations

from functools import cache

import pytest

from tests.browser.cluster import ROOT

AXE = ROOT / "tests" / "browser" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING_IMPACTS = ("serious", "critical")


@cache
def _axe_source() -> str:
    if not AXE.exists():
        pytest.fail(
            f"axe-core is missing ({AXE.relative_to(ROOT)}): run `make test-deps` "
            f"(or `make {AXE.relative_to(ROOT)}`)"
        )
    return AXE.read_text(encoding="utf-8")


# The pages send Content-Security-Policy: script-src 'self', which refuses a <script> tag with
# axe's source (add_script_tag); page.evaluate runs it through the DevTools protocol instead,
# which the policy does not govern, so the pages are checked with their real policy on.
_RUN_AXE = """
async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({
      target: n.target.join(" "), html: n.html.slice(0, 300), summary: n.failureSummary,
    })),
  }));
}
"""


def axe_violations(page) -> list[dict]:
    """Every violation axe-core finds on the page as it is now (all impacts)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    return page.evaluate(_RUN_AXE)


def blocking(violations: list[dict]) -> list[dict]:
    return [v for v in violations if v["impact"] in BLOCKING_IMPACTS]


def describe(violations: list[dict]) -> str:
    """Violations as a person reads them: rule, impact, what it means, where."""
    lines = []
    for v in violations:
        lines.append(f"  [{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"][:8]:
            lines.append(f"      at {node['target']}: {node['html']}")
            summary = " ".join((node["summary"] or "").split())
            if summary:
                lines.append(f"         {summary[:400]}")
        if len(v["nodes"]) > 8:
            lines.append(f"      … and {len(v['nodes']) - 8} more")
    return "\n".join(lines)


# How wide the page is against its window, and the outermost elements that stick out on the
# right (not counting what is inside a box that scrolls or clips sideways on its own).
_MEASURE = """
(limit) => {
  const root = document.documentElement;
  const clipped = (el) => {
    // An absolutely positioned element is clipped only by boxes from its containing block up.
    const absolute = ["absolute", "fixed"].includes(getComputedStyle(el).position);
    const start = absolute ? el.offsetParent : el.parentElement;
    for (let p = start; p && p !== document.body; p = p.parentElement) {
      const clips = ["auto", "scroll", "hidden", "clip"].includes(getComputedStyle(p).overflowX);
      if (clips && p.getBoundingClientRect().right <= limit + 0.5) return true;
    }
    return false;
  };
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.right <= limit + 0.5 || clipped(el)) continue;
    if (el.parentElement && wide.some((w) => w.el.contains(el))) continue;
    const name = el.tagName.toLowerCase() + (el.className && typeof el.className === "string"
      ? "." + el.className.trim().split(/\\s+/).join(".") : "");
    wide.push({ el, text: `${name} (right edge ${Math.round(box.right)} px): ` +
      (el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 80) });
    if (wide.length >= 6) break;
  }
  return {
    scrollWidth: root.scrollWidth, innerWidth: window.innerWidth, wide: wide.map((w) => w.text),
  };
}
"""


def overflow(page, width: int) -> str | None:
    """Why the page is wider than its ``width`` px window, or None when it fits."""
    sizes = page.evaluate(_MEASURE, width)
    wider = "; ".join(sizes["wide"]) or "(no single element)"
    if sizes["innerWidth"] != width:
        # A phone widens its layout viewport to show content that does not fit.
        return f"the window is {sizes['innerWidth']} px wide instead of {width} px: {wider}"
    if sizes["scrollWidth"] <= sizes["innerWidth"]:
        return None
    return f"{sizes['scrollWidth']} px wide in a {sizes['innerWidth']} px window: {wider}"


# ids named by aria-describedby / -labelledby / -controls and label[for] must exist, and the help
# and error texts of a form field must be named by its control (or the fieldset around it).
_REFERENCES = """
() => {
  const problems = [];
  const attrs = ["aria-describedby", "aria-labelledby", "aria-controls", "aria-errormessage"];
  for (const attr of attrs) {
    for (const el of document.querySelectorAll(`[${attr}]`)) {
      for (const id of el.getAttribute(attr).split(/\\s+/).filter(Boolean)) {
        if (!document.getElementById(id)) {
          problems.push(`${el.tagName.toLowerCase()}#${el.id} ${attr}="${id}": no such id`);
        }
      }
    }
  }
  for (const label of document.querySelectorAll("label[for]")) {
    const id = label.getAttribute("for");
    if (!id || !document.getElementById(id)) {
      problems.push(`label "${label.textContent.trim()}" for="${id}": no such id`);
    }
  }
  for (const text of document.querySelectorAll(".field .help, .field .error")) {
    const described = Array.from(document.querySelectorAll("[aria-describedby]")).some(
      (el) => text.id && el.getAttribute("aria-describedby").split(/\\s+/).includes(text.id));
    if (!described) {
      problems.push(`"${text.textContent.trim().slice(0, 60)}" describes no field`);
    }
  }
  return problems;
}
"""


def broken_references(page) -> list[str]:
    return page.evaluate(_REFERENCES)
