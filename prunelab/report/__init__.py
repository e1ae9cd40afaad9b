"""Reports generated from a sweep's results store: findings, plots, the local HTML / Markdown report and
the W&B Report."""
