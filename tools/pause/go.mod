module enclave.dev/tools/pause

go 1.24
