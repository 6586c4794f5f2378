# One line per Check suite.
lc_add_suite(audit lcdb)
lc_add_suite(config lcstation)
lc_add_suite(issue lcerr)
lc_add_suite(policy lchsm)
lc_add_suite(profile lchsm)
lc_add_suite(proto lchsm)
lc_add_suite(jig lcdaemon)
lc_add_suite(control lcstation)
