"""Eval and footprint reports: text (terminal), json, junit (CI), html (plots for people).

Each writer turns an evaluate.EvalResult (or a footprint.Footprint) into bytes or a
directory; nothing here recomputes a statistic.
"""
