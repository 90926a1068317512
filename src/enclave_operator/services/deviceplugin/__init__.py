"""The SGX device plugin: advertises `sgx.k8s.io/sgx` to the kubelet and hands SGX to pods.

The kubelet's device plugin API v1beta1 (gRPC over unix sockets) comes from generated stubs in
`v1beta1/` (scripts/gen-deviceplugin-api.sh); the rest is plain code around them.
"""
