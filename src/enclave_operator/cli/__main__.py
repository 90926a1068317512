"""`python -m enclave_operator.cli` runs enclavectl."""

from enclave_operator.cli.main import main

main()
