"""The paper's symbols as rich text, written once (``gui/format.py`` re-exports them)."""

#: alpha-bar and epsilon
ABAR = '<span style="text-decoration: overline">&alpha;</span>'
EPS = "&epsilon;"
