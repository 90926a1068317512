"""A local Kubernetes control plane built from Go modules, with kwok-simulated nodes."""
