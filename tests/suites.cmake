# One line per Check suite.
lc_add_suite(audit lcdb)
