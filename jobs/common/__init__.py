"""What every layer of jobs/ shares, importing nothing else of jobs/: the errors the CLI turns into
one line and the exit codes (`errors`), Ctrl-C / SIGTERM held while a video commits (`interrupts`),
progress lines for long jobs (`progress`), the output formats of table-like results (`output`), and
the command-line arguments several commands take (`arguments`)."""
