"""report.html: one self-contained page (inline CSS, script and base64 images) rebuilt from the run folder."""

from __future__ import annotations

import base64
import html
import re
from collections import Counter
from pathlib import Path

from tunelab.diagnose.evidence import Evidence
from tunelab.report import assets, diagnosis, tables
from tunelab.report.ablation_tables import ablation_html
from tunelab.report.cost_cells import COST_NOTE
from tunelab.report.plots import Plot, Renderer, make_plots
from tunelab.report.runinfo import ReportRun
from tunelab.runs.lock import hold, writer
from tunelab.runs.records import write_text_atomic

esc = html.escape


def _sort_attr(key: float | str | None) -> str:
    if key is None:
        return ""
    return f' data-sort="{esc(repr(key) if isinstance(key, float) else key)}"'


def _breakable(text: str) -> str:
    """Escaped text that may break after `_`, `,` or `=` (never inside a number): long trial and knob
    names wrap there."""
    return re.sub(r"([_,=])", r"\1<wbr>", esc(text))


def _table(table: tables.Table, sortable: bool = False, row_classes: list[str] | None = None,
           wrap: tuple[str, ...] = ()) -> str:
    """A table; with `wrap`, a fitted table: those columns wrap, every other cell stays on one line."""
    head = "".join(f"<th>{_breakable(h) if wrap else esc(h)}</th>" for h in table.headers)
    wrapped = {i for i, h in enumerate(table.headers) if h in wrap}
    body = []
    for i, row in enumerate(table.rows):
        cells = "".join(f'<td{_sort_attr(key)} class="wrap">{_breakable(text)}</td>' if j in wrapped
                        else f"<td{_sort_attr(key)}>{esc(text)}</td>" for j, (text, key) in enumerate(row))
        cls = row_classes[i] if row_classes and row_classes[i] else ""
        body.append((f'<tr class="{esc(cls)}">' if cls else "<tr>") + cells + "</tr>")
    names = " ".join(n for n, on in (("sortable", sortable), ("fitted", bool(wrap))) if on)
    cls = f' class="{names}"' if names else ""
    return f'<div class="scroll"><table{cls}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def _note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def _header(run: ReportRun) -> str:
    view = run.view
    states = Counter(t.state for t in run.trials)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "no trials yet"
    seeds = view.experiment.get("search", {}).get("seeds", 1)
    kind = f"{view.strategy} study" if run.is_study else "single training run (tunelab train)"
    return (
        f"<h1>{esc(view.name)}</h1>"
        f'<p class="meta">{esc(kind)} · objective {esc(run.metric)} ({esc(run.direction)}) · '
        f"{len(run.trials)} configuration(s): {esc(counts)} · {esc(str(seeds))} seed(s) per configuration</p>"
    )


def _results(run: ReportRun) -> str:
    parts = []
    best = tables.best_table(run)
    parts.append("<h3>Best configuration</h3>" + (_table(best) if best else _note("no configuration finished")))
    final = tables.final_table(run)
    if final:
        parts.append("<h3>Final test metrics</h3><p>The winner retrained on train+val and scored once on test; "
                     "selection used validation only.</p>" + _table(final))
    elif run.is_study:
        parts.append("<h3>Final test metrics</h3>" + _note("no final model (final.enabled is off, or it has not run)"))
    return "\n".join(parts)


def _diagnosis(run: ReportRun, given: Evidence | str | None) -> str:
    evidence = diagnosis.evidence_of(run, given)
    if isinstance(evidence, str):
        return _note(evidence)
    parts = []
    if evidence.cards:
        parts.append('<h3>Decision cards</h3><div class="cards">' + diagnosis.cards_html(evidence.cards) + "</div>")
    if evidence.findings:
        table, classes = diagnosis.findings_table(evidence.findings)
        parts.append(f"<h3>Findings ({len(evidence.findings)})</h3><p>Most important first; click a header to sort.</p>"
                     + _table(table, True, classes))
    else:
        parts.append("<h3>Findings</h3>" + diagnosis.no_findings_html())
    return "\n".join(parts)


def _summary(run: ReportRun) -> str:
    table = tables.summary_table(run)
    if not table.rows:
        return _note("no trials yet")
    best = run.best()
    classes = ["best" if best and number == best.number else "" for number in table.numbers]
    return ("<p>Click a column header to sort. Best row highlighted. " + esc(COST_NOTE) + "</p>"
            + _table(table, True, classes, wrap=(*tables.SUMMARY_WRAP, run.metric)) + ablation_html(run, _table))


def _plots(plots: list[Plot]) -> str:
    figures, notes = [], []
    for plot in plots:
        if plot.path is None:
            notes.append(f"<li><strong>{esc(plot.title)}</strong>: {esc(plot.note)}</li>")
            continue
        data = base64.b64encode(plot.path.read_bytes()).decode("ascii")
        figures.append(
            f'<figure id="plot-{esc(plot.name)}"><figcaption>{esc(plot.title)}</figcaption>'
            f'<img alt="{esc(plot.title)}" src="data:image/png;base64,{data}"></figure>'
        )
    skipped = f'<div class="note"><p>Not drawn:</p><ul>{"".join(notes)}</ul></div>' if notes else ""
    return "\n".join(figures) + skipped


def _experiment(run: ReportRun) -> str:
    text = run.view.layout.experiment_yaml.read_text(encoding="utf-8")
    ident = tables.identity_table(run)
    who = "<h3>Identity</h3>" + _table(ident) if ident else ""
    return f"<p>The resolved experiment.yaml (every default filled in):</p><pre>{esc(text)}</pre>{who}"


NAV = (("results", "Results"), ("diagnosis", "Diagnosis"), ("summary", "Summary table"), ("plots", "Plots"),
       ("experiment", "Experiment"))


def render_report(run_dir: str | Path, plots: list[Plot], evidence: Evidence | str | None = None) -> str:
    """The page as text; depends only on the folder's contents, never on where the folder is.

    `evidence`: the folder's cards and findings as computed by the caller (else evidence.json, else
    computed here), or a one-line note when the diagnosis failed.
    """
    run = ReportRun(run_dir)
    nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in NAV)
    body = "\n".join([
        _header(run),
        f"<nav>{nav}</nav>",
        _section("results", "Results", _results(run)),
        _section("diagnosis", "Diagnosis", _diagnosis(run, evidence)),
        _section("summary", "Summary table", _summary(run)),
        _section("plots", "Plots", _plots(plots)),
        _section("experiment", "Experiment", _experiment(run)),
    ])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{esc(assets.CSP)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(run.view.name)} · tunelab report</title>\n<style>{assets.CSS}</style>\n</head>\n"
        f"<body>\n{body}\n<script>{assets.SORT_JS}</script>\n</body>\n</html>\n"
    )


@writer
def write_report(run_dir: str | Path, evidence: Evidence | str | None = None, renderer: Renderer | None = None) -> Path:
    """Draw the plots, then write report.html atomically; returns its path. `evidence` as in `render_report`,
    `renderer` as in `make_plots`."""
    run_dir = Path(run_dir)
    run = ReportRun(run_dir)  # fails first, with one line, on a folder that is not a run folder
    hold(run_dir)  # one writer per run folder (runs/lock.py)
    plots = make_plots(run_dir, renderer)
    path = run.view.layout.report_html
    write_text_atomic(path, render_report(run_dir, plots, evidence))
    return path
