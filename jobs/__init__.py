"""Ray Data jobs of lavida (scan, search, eval, train) and the `lavida` CLI that starts them, in
packages by stage: cli -> train -> eval, search -> scan, query -> video -> out -> common
(ARCHITECTURE.md; the direction is checked by lint-imports)."""
