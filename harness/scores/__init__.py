"""Scores: what published numbers are computed from judged attempts, pure wherever they can be.

``judged.py`` (the judged attempts scores read), ``coverage.py`` (unbiased pass@k, coverage and
selection curves), ``fits.py`` (scaling fits and extrapolation), ``prices.py`` (token and hourly
prices, cost), ``report.py`` (a run's summary from its store) and ``report_html.py`` (the HTML page).
"""
