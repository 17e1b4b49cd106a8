"""Ray Data jobs of lavida (scan, search, eval, train) and the `lavida` CLI that starts them."""
