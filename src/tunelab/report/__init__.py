"""The report: plots (PNG) and one self-contained `report.html`, rebuilt from a run folder alone.

`tunelab.report.plots.write_plots(run_dir)` and `tunelab.report.html.write_report(run_dir)`.
"""
