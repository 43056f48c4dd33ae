"""The exit codes every command shares (README: "Exit codes")."""

EXIT_OK, EXIT_FAILED_INPUTS, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT
