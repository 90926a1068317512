"""What LAS, CAS and the enclave runtime agree on: the quote, the measurement, the sealed
secret release and the addresses. A library with no I/O beyond reading the measured program,
so that the three parties share one definition of each format."""
